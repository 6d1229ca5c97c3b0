"""WhatsApp through TimelinesAI's public API (shapes in `providers.md`).

Every reply is wrapped as `{"status": "ok"|"error", "data": ...}`. Sends name the sending
number (`whatsapp_account_phone`) every time: without it TimelinesAI sends from the most
recently connected number, which would spend a number the quota guardian did not reserve.

TimelinesAI cannot deduplicate a send, so sends are not replay-safe: `ProviderHttp` repeats
them only when the request surely did not arrive (see `http.py`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar
from urllib.parse import quote

import msgspec

from cerniq_outreach.adapters.channels.http import HttpPolicy, ProviderHttp, convert_reply
from cerniq_outreach.application.channels import (
    InvalidRecipient,
    RequestRejected,
    SendResult,
    StatusChange,
    TransientProviderError,
    WhatsAppAccount,
    WhatsAppMessage,
)
from cerniq_outreach.application.ports import Clock, RateLimiter
from cerniq_outreach.domain.rate_limit import TIMELINESAI_LIMIT
from cerniq_outreach.settings import ProviderSettings

PROVIDER: Final = "timelinesai"
T = TypeVar("T")

# *Unconfirmed*: the documentation does not show the reply to a number that is not on
# WhatsApp; it is a 4xx whose message names the phone as invalid or unregistered.
_INVALID_PHONE: Final = re.compile(
    r"not (?:registered|on whatsapp|a whatsapp)|invalid (?:phone|number|recipient)"
    r"|(?:phone|number) (?:is )?(?:invalid|not valid)",
    re.IGNORECASE,
)


def _is_invalid_recipient(status: int, reply: Any) -> bool:  # noqa: ANN401  # decoded JSON
    message = reply.get("message") if isinstance(reply, dict) else None
    return 400 <= status < 500 and isinstance(message, str) and bool(_INVALID_PHONE.search(message))  # noqa: PLR2004


class _Sent(msgspec.Struct):
    message_uid: str | int


class _Message(msgspec.Struct):
    # *Unconfirmed* beyond `status`, `from_me` and `timestamp`, which providers.md lists.
    message_uid: str | int | None = None
    uid: str | int | None = None
    chat_id: str | int | None = None
    status: str | None = None
    from_me: bool = False
    timestamp: str | None = None
    text: str | None = None

    def to_port(self, fallback_uid: str = "") -> WhatsAppMessage:
        uid = self.message_uid if self.message_uid is not None else self.uid
        return WhatsAppMessage(
            uid=str(uid) if uid is not None else fallback_uid,
            chat_id=None if self.chat_id is None else str(self.chat_id),
            status=self.status,
            from_me=self.from_me,
            timestamp=self.timestamp,
            text=self.text,
        )


class _Chat(msgspec.Struct):
    id: str | int
    phone: str | None = None
    whatsapp_account_phone: str | None = None


class _Account(msgspec.Struct):
    id: str
    phone: str
    status: str


class _StatusChange(msgspec.Struct):
    status: str
    timestamp: str | None = None


class TimelinesAiChannel:
    """The `WhatsAppChannel` port over TimelinesAI."""

    def __init__(self, http: ProviderHttp) -> None:
        self._http = http

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def send_to_phone(
        self, *, from_phone: str, to_phone: str, text: str, label: str | None = None
    ) -> SendResult:
        """Send `text` to `to_phone` from the pool number `from_phone`."""
        body: dict[str, str] = {"phone": to_phone, "whatsapp_account_phone": from_phone}
        body["text"] = text
        if label is not None:
            body["label"] = label
        data = self._data("POST", "/messages", body=body, replay_safe=False)
        return SendResult(provider=PROVIDER, external_id=str(_convert(data, _Sent).message_uid))

    def send_to_chat(self, *, chat_id: str, text: str) -> SendResult:
        """Send `text` into an existing chat."""
        path = f"/chats/{_segment(chat_id)}/messages"
        data = self._data("POST", path, body={"text": text}, replay_safe=False)
        return SendResult(provider=PROVIDER, external_id=str(_convert(data, _Sent).message_uid))

    def message(self, message_uid: str) -> WhatsAppMessage:
        """One message's details."""
        data = self._data("GET", f"/messages/{_segment(message_uid)}")
        return _convert(data, _Message).to_port(message_uid)

    def status_history(self, message_uid: str) -> list[StatusChange]:
        """A message's delivery statuses, oldest first."""
        data = self._data("GET", f"/messages/{_segment(message_uid)}/status_history")
        # *Unconfirmed*: the list may come bare or under a key; both are accepted.
        items = data.get("status_history", data.get("statuses")) if isinstance(data, dict) else data
        changes = _convert(items, list[_StatusChange])
        return [StatusChange(status=c.status, timestamp=c.timestamp) for c in changes]

    def chat_messages(self, chat_id: str) -> list[WhatsAppMessage]:
        """The most recent page of a chat's messages."""
        data = self._data("GET", f"/chats/{_segment(chat_id)}/messages")
        items = data.get("messages") if isinstance(data, dict) else data
        return [m.to_port() for m in _convert(items, list[_Message])]

    def accounts(self) -> list[WhatsAppAccount]:
        """Every linked number with its status."""
        data = self._data("GET", "/whatsapp_accounts")
        items = data.get("whatsapp_accounts") if isinstance(data, dict) else data
        return [
            WhatsAppAccount(account_id=a.id, phone=a.phone, status=a.status)
            for a in _convert(items, list[_Account])
        ]

    def find_sent(self, *, from_phone: str, to_phone: str, text: str) -> SendResult | None:
        """Our message with `text` in the chat between the two numbers, if there is one.

        *Unconfirmed*: `GET /chats` is paged (`page`, `has_more_pages`); its `phone` filter
        and the chats' `whatsapp_account_phone` field are not documented, so every chat
        returned is checked against both numbers here.
        """
        page = 1
        while True:
            data = self._data("GET", "/chats", params={"phone": to_phone, "page": str(page)})
            items = data.get("chats") if isinstance(data, dict) else data
            for chat in _convert(items, list[_Chat]):
                if chat.phone != to_phone or chat.whatsapp_account_phone not in (None, from_phone):
                    continue
                for message in self.chat_messages(str(chat.id)):
                    if message.from_me and message.text == text:
                        return SendResult(provider=PROVIDER, external_id=message.uid)
            if not (isinstance(data, dict) and data.get("has_more_pages")):
                return None
            page += 1

    def _data(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        replay_safe: bool = True,
    ) -> Any:  # noqa: ANN401  # the envelope's `data`, shaped per endpoint
        """Call and unwrap the `{"status", "data"}` envelope."""
        reply = self._http.call(method, path, body=body, params=params, replay_safe=replay_safe)
        if not isinstance(reply, dict):
            raise _unexpected(f"{method} {path}")
        if reply.get("status") != "ok":
            # An error inside a 2xx reply: judged like the same error with a 4xx status.
            detail = f"{method} {path}: provider status {reply.get('status')!r}"
            if _is_invalid_recipient(400, reply):
                raise InvalidRecipient(PROVIDER, detail)
            raise RequestRejected(PROVIDER, detail)
        return reply.get("data")


def _segment(value: str) -> str:
    """An id as one URL path segment (chat ids are provider-made, but never trusted)."""
    return quote(value, safe="@.")


def _convert(data: Any, kind: type[T]) -> T:  # noqa: ANN401  # decoded JSON in
    return convert_reply(PROVIDER, data, kind)


def _unexpected(what: str) -> TransientProviderError:
    # The provider may well have sent the message; only the reply was not as documented.
    return TransientProviderError(PROVIDER, f"unexpected reply ({what})", may_have_acted=True)


def timelinesai_channel(
    settings: ProviderSettings,
    rate_limiter: RateLimiter,
    clock: Clock,
    *,
    policy: HttpPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> TimelinesAiChannel:
    """The live WhatsApp channel for these settings (the composition root calls this).

    Raises:
        ValueError: the settings hold no API key (the channel then runs in the sandbox).
    """
    if settings.api_key is None:
        raise ValueError("TimelinesAI has no API key: use the sandbox channel")
    http = ProviderHttp(
        provider=PROVIDER,
        base_url=settings.base_url,
        api_key=settings.api_key,
        limit=TIMELINESAI_LIMIT,
        rate_limiter=rate_limiter,
        clock=clock,
        policy=policy,
        sleep=sleep,
        is_invalid_recipient=_is_invalid_recipient,
    )
    return TimelinesAiChannel(http)
