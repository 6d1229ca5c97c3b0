"""The HTTP behaviour every channel adapter shares, written once.

`ProviderHttp` wraps an `httpx.Client` for one provider workspace and gives each call:

- the workspace's token bucket (the `RateLimiter` port) before every attempt, retries
  included, so a burst of retries cannot break the provider's limit either;
- timeouts: 5 s to connect and 30 s in total per attempt. httpx only bounds each socket
  operation, so a reply trickling in a byte at a time would never time out; the body is
  therefore streamed in chunks against a monotonic deadline, and each read is allowed only
  the time left. A reply not complete by the deadline is a read timeout. (The request and
  the status line with headers are bounded per operation by the same 30 s: the request is
  small, and a server that trickles its header block is the one case still bounded per read
  rather than in total.)
- retries with exponential backoff and full jitter on network errors, 429 and 5xx, waiting
  exactly what `Retry-After` announces when the provider sends it, for a bounded number of
  attempts; a wait longer than `HttpPolicy.max_wait` is not spent inside the call but handed
  to the application as `RateLimited(retry_at)`, so a worker is not blocked for minutes;
- the error taxonomy of `application.channels`: 401/403 `ProviderAuthError`, the provider's
  own invalid-recipient answers `InvalidRecipient`, other 4xx `RequestRejected`;
- one log line per attempt, with bodies and headers redacted (`redaction.py`).

A request that is not `replay_safe` (a send the provider cannot deduplicate) is only retried
when it surely did not reach the provider: the connection failed, or the provider refused it
with 429, 502 or 503. After a read timeout or a 500 it fails at once with
`TransientProviderError(may_have_acted=True)`: sending again could write to a person twice.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Final, TypeVar

import httpx
import msgspec

from cerniq_outreach.adapters.channels.redaction import redact, redact_headers, scrub
from cerniq_outreach.application.channels import (
    ChannelError,
    InvalidRecipient,
    ProviderAuthError,
    RateLimited,
    RequestRejected,
    TransientProviderError,
)
from cerniq_outreach.application.ports import Clock, RateLimiter
from cerniq_outreach.domain.rate_limit import RateLimit
from cerniq_outreach.observability import get_logger

_log = get_logger(__name__)

T = TypeVar("T")

# Providers that refused a request without acting on it; safe to repeat even a send.
_NOT_ACTED: Final = frozenset({429, 502, 503})
_JSON_DECODER: Final = msgspec.json.Decoder()

ReplyCheck = Callable[[int, Any], bool]
"""A provider-specific test on an error reply: (HTTP status, decoded body) -> verdict."""


def _never(_status: int, _body: Any) -> bool:  # noqa: ANN401  # a decoded JSON body
    return False


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpPolicy:
    """Timeouts and retry bounds of provider calls (seconds).

    `connect_timeout` bounds opening a connection; `timeout` bounds a whole attempt, from
    sending the request to the last byte of the reply (see the module docstring).
    """

    connect_timeout: float = 5.0
    timeout: float = 30.0
    max_attempts: int = 4
    backoff_base: float = 0.5
    backoff_cap: float = 20.0
    max_wait: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")


@dataclass(frozen=True, slots=True)
class _Retry:
    """An attempt failed in a way worth repeating: the error to raise if it is the last."""

    error: ChannelError
    wait: float | None  # what the provider asked for (Retry-After), else None: back off


class ProviderHttp:
    """JSON over HTTP to one provider workspace, with the shared behaviour described above.

    Args:
        provider: the provider's name, used in errors, logs and the rate-limit key.
        base_url: the API root; request paths are joined to it.
        api_key: the bearer token; it also names the workspace's token bucket (hashed).
        limit: the workspace's request limit (`domain.rate_limit`).
        rate_limiter: the shared token buckets.
        clock: the current time (for the limiter and for `retry_at`).
        policy: timeouts and retry bounds.
        sleep: how to wait (seconds); tests inject one that only advances a simulated clock.
        jitter: a uniform [0, 1) source for the backoff.
        is_invalid_recipient: recognises the provider's "this recipient cannot receive" reply.
        is_retryable: recognises other provider-specific error replies worth repeating.
        transport: an httpx transport to use instead of the network (tests).
    """

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        api_key: str,
        limit: RateLimit,
        rate_limiter: RateLimiter,
        clock: Clock,
        policy: HttpPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        is_invalid_recipient: ReplyCheck = _never,
        is_retryable: ReplyCheck = _never,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.provider = provider
        self._policy = policy or HttpPolicy()
        self._limit = limit
        self._rate_limiter = rate_limiter
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._is_invalid_recipient = is_invalid_recipient
        self._is_retryable = is_retryable
        # One bucket per workspace; the key never holds the API key itself.
        workspace = hashlib.sha256(api_key.encode()).hexdigest()[:16]
        self.rate_key = f"{provider}:{workspace}"
        self._client = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=httpx.Timeout(self._policy.timeout, connect=self._policy.connect_timeout),
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,  # noqa: ANN401  # any JSON-encodable value
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        replay_safe: bool = True,
    ) -> Any:  # noqa: ANN401  # the decoded JSON reply, shaped by the provider
        """Make one logical call (retrying as the policy allows); return the decoded reply.

        Raises:
            ChannelError: one of its subclasses, as described in the module docstring.
        """
        content = None if body is None else msgspec.json.encode(body)
        sent_headers = {**(headers or {})}
        if content is not None:
            sent_headers["Content-Type"] = "application/json"
        for attempt in range(1, self._policy.max_attempts + 1):
            self._take_token()
            outcome = self._attempt(
                method,
                path,
                content,
                params,
                sent_headers,
                attempt=attempt,
                body=body,
                replay_safe=replay_safe,
            )
            if not isinstance(outcome, _Retry):
                return outcome
            last = attempt == self._policy.max_attempts
            if outcome.wait is not None:
                wait = outcome.wait
            else:
                # Full jitter: a uniform wait up to the exponential bound spreads out the
                # retries of many workers that failed together.
                bound = self._policy.backoff_base * 2 ** (attempt - 1)
                wait = self._jitter() * min(self._policy.backoff_cap, bound)
            if last or wait > self._policy.max_wait:
                raise self._final(outcome.error, wait)
            self._sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    def _final(self, error: ChannelError, wait: float) -> ChannelError:
        """The error to raise when the retries are spent; a 429 says when to come back."""
        if isinstance(error, RateLimited):
            return RateLimited(
                self.provider, error.detail, retry_at=self._clock.now() + timedelta(seconds=wait)
            )
        return error

    def _take_token(self) -> None:
        """Wait for the workspace's token bucket, or raise RateLimited if that is too long."""
        for _ in range(self._policy.max_attempts * 4):
            now = self._clock.now()
            wait = self._rate_limiter.acquire(self.rate_key, self._limit, at=now)
            if wait <= 0:
                return
            if wait > self._policy.max_wait:
                break
            self._sleep(wait)
        else:
            wait = self._limit.period_seconds
        raise RateLimited(
            self.provider,
            "our own request budget for the provider is spent",
            retry_at=self._clock.now() + timedelta(seconds=wait),
        )

    def _attempt(
        self,
        method: str,
        path: str,
        content: bytes | None,
        params: Mapping[str, str] | None,
        headers: dict[str, str],
        *,
        attempt: int,
        body: Any,  # noqa: ANN401  # the JSON value behind `content`, logged redacted
        replay_safe: bool,
    ) -> Any:  # noqa: ANN401  # the decoded reply or a _Retry
        """One HTTP exchange: the decoded reply, a `_Retry`, or a permanent error raised."""
        started = time.perf_counter()
        deadline = time.monotonic() + self._policy.timeout
        # Paths hold provider ids only, but scrubbed anyway: an id may be built from a number.
        shown = scrub(path)
        log = _log.bind(provider=self.provider, method=method, path=shown, attempt=attempt)
        try:
            request = self._client.build_request(
                method, path, content=content, params=params, headers=headers
            )
            response = self._client.send(request, stream=True)
            try:
                raw = _read_within(response, request, deadline)
            finally:
                response.close()
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # The request never left: repeating it cannot duplicate anything.
            log.warning("provider_call_failed", error=type(exc).__name__)
            error = TransientProviderError(self.provider, f"{method} {shown}: cannot connect")
            return _Retry(error, None)
        except httpx.TransportError as exc:
            log.warning("provider_call_failed", error=type(exc).__name__)
            error = TransientProviderError(
                self.provider, f"{method} {shown}: {type(exc).__name__}", may_have_acted=True
            )
            if not replay_safe:
                raise error from exc
            return _Retry(error, None)
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        status = response.status_code
        reply = self._decode(raw)
        log.info("provider_call", status=status, elapsed_ms=elapsed_ms)
        log.debug(
            "provider_call_detail",
            request_headers=redact_headers(dict(response.request.headers)),
            request_body=redact(body),
            response_body=redact(reply),
        )
        if response.is_success:
            return reply
        return self._judge(response, reply, f"{method} {shown}", replay_safe=replay_safe)

    def _judge(
        self,
        response: httpx.Response,
        reply: Any,  # noqa: ANN401  # the decoded error body
        call: str,
        *,
        replay_safe: bool,
    ) -> _Retry:
        """Classify an error reply: a `_Retry`, or the permanent error raised."""
        status = response.status_code
        detail = f"{call} answered {status}: {_message_of(reply)}"
        retry_after = retry_after_seconds(response.headers.get("Retry-After"), self._clock.now())
        if status in {401, 403}:
            raise ProviderAuthError(self.provider, detail)
        if status == 429:  # noqa: PLR2004  # HTTP Too Many Requests
            return _Retry(
                RateLimited(self.provider, detail, retry_at=self._clock.now()), retry_after
            )
        if self._is_invalid_recipient(status, reply):
            raise InvalidRecipient(self.provider, detail)
        if status >= 500 or status == 408 or self._is_retryable(status, reply):  # noqa: PLR2004
            acted = status not in _NOT_ACTED
            error = TransientProviderError(self.provider, detail, may_have_acted=acted)
            if acted and not replay_safe:
                raise error
            return _Retry(error, retry_after)
        raise RequestRejected(self.provider, detail)

    @staticmethod
    def _decode(raw: bytes) -> Any:  # noqa: ANN401  # decoded JSON
        if not raw:
            return None
        try:
            return _JSON_DECODER.decode(raw)
        except msgspec.DecodeError:
            # Proxies answer 502/504 with HTML; keep a scrubbed excerpt for the error message.
            return {"message": scrub(raw[:200].decode("utf-8", errors="replace"))}


def _read_within(response: httpx.Response, request: httpx.Request, deadline: float) -> bytes:
    """The whole (decoded) body of a streamed response, or ReadTimeout past `deadline`.

    httpcore takes the per-read bound from the request's `timeout` extension when the body
    starts streaming, so it is set to the time left first: a stalled body ends at the
    deadline, and a trickling one is caught by the check after each chunk.
    """
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpx.ReadTimeout(
            "the reply's headers came after the total deadline", request=request
        )
    request.extensions["timeout"] = {**request.extensions.get("timeout", {}), "read": left}
    chunks: list[bytes] = []
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout(
                "the reply was not complete by the total deadline", request=request
            )
    return b"".join(chunks)


def _message_of(reply: Any) -> str:  # noqa: ANN401  # a decoded JSON error body
    """The provider's error message, scrubbed of personal data (providers echo recipients)."""
    if isinstance(reply, Mapping):
        for key in ("message", "error", "name"):
            value = reply.get(key)
            if isinstance(value, str) and value:
                return scrub(value)[:300]
    return "no error message"


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """The wait a `Retry-After` header announces (delta-seconds or an HTTP date), else None."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT by definition
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def convert_reply(provider: str, data: Any, kind: type[T]) -> T:  # noqa: ANN401  # decoded JSON
    """`data` (part of a 2xx reply) as `kind`, or TransientProviderError if it is not that.

    A reply not shaped as documented is not proof the request failed: the provider may have
    acted on it, so the error says so and the application checks before repeating a send.
    """
    try:
        return msgspec.convert(data, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise TransientProviderError(
            provider, f"unexpected reply shape: {scrub(str(exc))}", may_have_acted=True
        ) from None
