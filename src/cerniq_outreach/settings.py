"""Configuration from the environment, validated once at start-up.

`Settings.from_env(os.environ)` reads every variable of the interfaces contract. A wrong value
raises `SettingsError` with one line naming the variable and what is wrong, so a bad deployment
fails before it serves a request rather than on the first message it tries to send. Secret
values (API keys, webhook secrets, passwords inside URLs) never appear in an error message or
in `repr(settings)`.
"""

from __future__ import annotations

import binascii
import re
from base64 import b64decode
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final, Literal
from urllib.parse import SplitResult, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

LogFormat = Literal["json", "console"]
ProviderName = Literal["timelinesai", "instantly", "resend"]

DEFAULT_DATABASE_URL: Final = "sqlite:///./var/cerniq.db"
DEFAULT_TIMEZONE: Final = "Europe/Bucharest"
DEFAULT_REDIS_PREFIX: Final = "cerniq:"
DEFAULT_BROKER_QUEUE: Final = "cerniq"
DEFAULT_SEND_LEASE_SECONDS: Final = 120.0
"""How long a send attempt is presumed alive (real seconds): longer than a provider call
with its retries can last, so a slow worker is never taken for a dead one."""
_DAY_SECONDS: Final = 86_400.0
_NAME: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
DEFAULT_BASE_URLS: Final[Mapping[ProviderName, str]] = {
    "timelinesai": "https://app.timelines.ai/integrations/api",
    "instantly": "https://api.instantly.ai",
    "resend": "https://api.resend.com",
}

# Which provider carries each outbound channel (providers.md), so callers may ask by either.
_PROVIDER_OF_CHANNEL: Final[Mapping[str, ProviderName]] = {
    "WHATSAPP": "timelinesai",
    "EMAIL_COLD": "instantly",
    "EMAIL_WARM": "resend",
}

# Keys and secrets travel in HTTP headers: printable ASCII without spaces is all a header can
# carry safely, and a pasted trailing newline is the usual way a key ends up "invalid".
_HEADER_SAFE: Final = re.compile(r"[\x21-\x7e]+")
# The TimelinesAI secret may also be a URL path segment (its webhooks carry no signature).
_PATH_SAFE: Final = re.compile(r"[A-Za-z0-9._~-]+")
_REDIS_DB_PATH: Final = re.compile(r"/?|/[0-9]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatedClockSpec:
    """`CERNIQ_CLOCK`: a simulated clock that every process given the same value shares.

    Simulated time is `start + (wall time - anchor) * speed`: processes started at different
    moments agree on the time because they share the anchor (a Unix time), not their own
    start. For demonstrations and end-to-end tests; production leaves it unset.
    Form: `start=2026-03-02T07:00:00+00:00 speed=60 anchor=1764115200.5`.
    """

    start: datetime
    speed: float
    anchor: float


class SettingsError(ValueError):
    """A configuration variable holds a value the service cannot run with.

    The message is a single line that names the variable and never contains a secret.
    """


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderSettings:
    """Credentials and endpoint of one channel provider; without an API key it is sandboxed."""

    name: ProviderName
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)

    @property
    def live(self) -> bool:
        """True when an API key is configured, so messages go to the real provider."""
        return self.api_key is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class LlmSettings:
    """An OpenAI-compatible chat endpoint used to score reply sentiment."""

    url: str
    model: str
    api_key: str | None = field(default=None, repr=False)


def _provider(name: ProviderName) -> ProviderSettings:
    return ProviderSettings(name=name, base_url=DEFAULT_BASE_URLS[name])


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything the process is configured with; build it with `Settings.from_env`.

    The defaults are the embedded mode: a SQLite file, in-process quota and jobs, sandbox
    providers and the offline lexicon for sentiment.
    """

    # URLs may carry passwords, hence repr=False; `describe()` gives a redacted view for logs.
    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)
    redis_url: str | None = field(default=None, repr=False)
    broker_url: str | None = field(default=None, repr=False)
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TIMEZONE))
    log_format: LogFormat | None = None
    timelinesai: ProviderSettings = field(default_factory=lambda: _provider("timelinesai"))
    instantly: ProviderSettings = field(default_factory=lambda: _provider("instantly"))
    resend: ProviderSettings = field(default_factory=lambda: _provider("resend"))
    llm: LlmSettings | None = None
    catalog_path: Path | None = None
    clock: SimulatedClockSpec | None = None
    redis_prefix: str = DEFAULT_REDIS_PREFIX
    broker_queue: str = DEFAULT_BROKER_QUEUE
    send_lease_seconds: float = DEFAULT_SEND_LEASE_SECONDS

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read and validate the configuration; an empty variable counts as unset.

        Raises:
            SettingsError: a variable holds a value that cannot work.
        """
        env = _Env(environ)
        return cls(
            database_url=_database_url(env),
            redis_url=_url(env, "CERNIQ_REDIS_URL", ("redis", "rediss", "unix")),
            broker_url=_url(env, "CERNIQ_BROKER_URL", ("redis", "rediss", "amqp", "amqps")),
            timezone=_timezone(env),
            log_format=_log_format(env),
            timelinesai=_provider_from_env(env, "timelinesai", "TIMELINESAI"),
            instantly=_provider_from_env(env, "instantly", "INSTANTLY"),
            resend=_provider_from_env(env, "resend", "RESEND"),
            llm=_llm(env),
            catalog_path=_catalog_path(env),
            clock=_clock(env),
            redis_prefix=_name(env, "CERNIQ_REDIS_PREFIX", DEFAULT_REDIS_PREFIX),
            broker_queue=_name(env, "CERNIQ_BROKER_QUEUE", DEFAULT_BROKER_QUEUE),
            send_lease_seconds=_seconds(
                env, "CERNIQ_SEND_LEASE_SECONDS", DEFAULT_SEND_LEASE_SECONDS
            ),
        )

    @property
    def database_backend(self) -> Literal["sqlite", "postgres"]:
        """Which event-store backend the database URL selects."""
        return "sqlite" if urlsplit(self.database_url).scheme == "sqlite" else "postgres"

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file of a `sqlite:///path` URL (relative to the working directory)."""
        if self.database_backend != "sqlite":
            return None
        return Path(self.database_url[len("sqlite:///") :])

    @property
    def embedded(self) -> bool:
        """True when everything runs in this process: SQLite, no Redis, no broker."""
        return (
            self.database_backend == "sqlite"
            and self.redis_url is None
            and (self.broker_url is None)
        )

    def provider(self, name: str) -> ProviderSettings:
        """The settings of a provider, by provider name or by the channel it carries.

        Raises:
            KeyError: `name` is neither a provider nor an outbound channel.
        """
        key = _PROVIDER_OF_CHANNEL.get(str(name).upper(), str(name).lower())
        providers: dict[str, ProviderSettings] = {
            p.name: p for p in (self.timelinesai, self.instantly, self.resend)
        }
        try:
            return providers[key]
        except KeyError:
            known = ", ".join([*providers, *_PROVIDER_OF_CHANNEL])
            raise KeyError(f"unknown provider or channel {name!r} (known: {known})") from None

    def channel_is_live(self, name: str) -> bool:
        """True when the channel's provider has an API key (else the sandbox simulates it).

        `name` is a provider (`timelinesai`, `instantly`, `resend`) or an outbound channel
        (`WHATSAPP`, `EMAIL_COLD`, `EMAIL_WARM`).
        """
        return self.provider(name).live

    def describe(self) -> dict[str, str]:
        """A loggable summary of the configuration: passwords masked, secrets only as set/unset."""
        summary = {
            "database_url": redact_url(self.database_url),
            "redis_url": redact_url(self.redis_url) if self.redis_url else "in-process",
            "broker_url": redact_url(self.broker_url) if self.broker_url else "in-process",
            "timezone": self.timezone.key,
            "log_format": self.log_format or "auto",
            "llm": f"{redact_url(self.llm.url)} ({self.llm.model})" if self.llm else "lexicon",
        }
        for p in (self.timelinesai, self.instantly, self.resend):
            summary[p.name] = f"live {p.base_url}" if p.live else "sandbox"
        return summary


def redact_url(url: str) -> str:
    """`url` with any password replaced by `***`, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


class _Env:
    """The environment with "" treated as unset, as shells and compose files often export it."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def get(self, name: str) -> str | None:
        value = self._environ.get(name)
        return value or None


def _split(name: str, value: str, schemes: tuple[str, ...]) -> SplitResult:
    """Parse a URL, checking the scheme and port without ever quoting the value back."""
    allowed = ", ".join("sqlite:///" if s == "sqlite" else f"{s}://" for s in schemes)
    if not _HEADER_SAFE.fullmatch(value):
        raise SettingsError(f"{name} contains whitespace or control characters")
    if "://" not in value:
        raise SettingsError(f"{name} is not a URL: it must start with one of {allowed}")
    parts = urlsplit(value)
    if parts.scheme.lower() not in schemes:
        # The scheme alone is safe to show: it comes before any credentials.
        raise SettingsError(
            f"{name} has scheme {parts.scheme!r}; it must start with one of {allowed}"
        )
    try:
        _ = parts.port
    except ValueError:
        raise SettingsError(f"{name} has an invalid port (must be 1-65535)") from None
    return parts


def _database_url(env: _Env) -> str:
    value = env.get("CERNIQ_DATABASE_URL")
    return DEFAULT_DATABASE_URL if value is None else check_database_url(value)


def check_database_url(value: str, name: str = "CERNIQ_DATABASE_URL") -> str:
    """Validate a database URL (also used for command-line options that take one).

    Raises:
        SettingsError: the URL is neither `postgresql://…` / `postgres://…` nor `sqlite:///path`;
            the message names `name`.
    """
    parts = _split(name, value, ("postgresql", "postgres", "sqlite"))
    if parts.scheme.lower() == "sqlite":
        if parts.netloc or parts.path in {"", "/"}:
            raise SettingsError(
                f"{name} must name a file as sqlite:///relative/path or sqlite:////absolute/path"
            )
        return value
    # libpq accepts an empty host (Unix socket), so only the host-less *and* path-less form,
    # which names no server and no database, is rejected.
    if not parts.netloc and parts.path in {"", "/"}:
        raise SettingsError(f"{name} names no PostgreSQL host or database")
    return value


def _url(env: _Env, name: str, schemes: tuple[str, ...]) -> str | None:
    value = env.get(name)
    if value is None:
        return None
    parts = _split(name, value, schemes)
    scheme = parts.scheme.lower()
    if scheme == "unix":
        if not parts.path:
            raise SettingsError(f"{name} must give the socket path, as unix:///run/redis.sock")
    elif scheme in {"redis", "rediss"}:
        if not _REDIS_DB_PATH.fullmatch(parts.path):
            raise SettingsError(f"{name} path must be a database number, as redis://host:6379/0")
    elif not parts.hostname:
        raise SettingsError(f"{name} names no host")
    return value


def _http_url(env: _Env, name: str) -> str | None:
    value = env.get(name)
    if value is None:
        return None
    parts = _split(name, value, ("https", "http"))
    if not parts.hostname:
        raise SettingsError(f"{name} names no host")
    # Stored without a trailing slash so adapters can join paths as f"{base}/messages".
    return value.rstrip("/")


def _timezone(env: _Env) -> ZoneInfo:
    name = "CERNIQ_TIMEZONE"
    value = env.get(name) or DEFAULT_TIMEZONE
    try:
        return ZoneInfo(value)
    # ValueError covers malformed keys such as absolute paths or "../x".
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"{name}={value!r} is not an IANA time zone (e.g. {DEFAULT_TIMEZONE})"
        ) from None


def _log_format(env: _Env) -> LogFormat | None:
    name = "CERNIQ_LOG_FORMAT"
    value = env.get(name)
    if value is None:
        return None
    match value.lower():
        case "json":
            return "json"
        case "console":
            return "console"
        case _:
            raise SettingsError(f"{name}={value!r} must be 'json' or 'console'")


def _secret(env: _Env, name: str, pattern: re.Pattern[str] = _HEADER_SAFE) -> str | None:
    value = env.get(name)
    if value is not None and not pattern.fullmatch(value):
        what = "letters, digits and . _ ~ -" if pattern is _PATH_SAFE else "printable characters"
        raise SettingsError(f"{name} must hold only {what} (no spaces or line breaks)")
    return value


def _svix_secret(env: _Env, name: str) -> str | None:
    value = _secret(env, name)
    if value is None:
        return None
    if not value.startswith("whsec_"):
        raise SettingsError(f"{name} must start with 'whsec_' (copy it from the Resend dashboard)")
    try:
        key = b64decode(value.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        raise SettingsError(f"{name} must be 'whsec_' followed by base64") from None
    if not key:
        raise SettingsError(f"{name} has an empty key after 'whsec_'")
    return value


def _provider_from_env(env: _Env, name: ProviderName, prefix: str) -> ProviderSettings:
    secret_name = f"{prefix}_WEBHOOK_SECRET"
    if name == "resend":
        webhook_secret = _svix_secret(env, secret_name)
    elif name == "timelinesai":
        webhook_secret = _secret(env, secret_name, _PATH_SAFE)
    else:
        webhook_secret = _secret(env, secret_name)
    return ProviderSettings(
        name=name,
        base_url=_http_url(env, f"{prefix}_BASE_URL") or DEFAULT_BASE_URLS[name],
        api_key=_secret(env, f"{prefix}_API_KEY"),
        webhook_secret=webhook_secret,
    )


def _name(env: _Env, name: str, default: str) -> str:
    """A key prefix or queue name: letters, digits and `_.:-` (it becomes part of key names)."""
    raw = env.get(name)
    if raw is None:
        return default
    if not _NAME.fullmatch(raw):
        raise SettingsError(f"{name} may hold letters, digits and _.:- only (1 to 64 of them)")
    return raw


def _seconds(env: _Env, name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not 1.0 <= value <= _DAY_SECONDS:
        raise SettingsError(f"{name} must be between 1 and 86400 seconds, not {raw}")
    return value


def _catalog_path(env: _Env) -> Path | None:
    raw = env.get("CERNIQ_CATALOG")
    if raw is None:
        return None
    path = Path(raw).expanduser()
    if not path.is_file():
        raise SettingsError(f"CERNIQ_CATALOG {raw!r} is not a readable file")
    return path


def _clock(env: _Env) -> SimulatedClockSpec | None:
    raw = env.get("CERNIQ_CLOCK")
    if raw is None:
        return None
    form = "start=ISO-TIME speed=N anchor=UNIX-TIME"
    try:
        parts = dict(item.split("=", 1) for item in raw.split())
        start = datetime.fromisoformat(parts["start"])
        speed = float(parts["speed"])
        anchor = float(parts["anchor"])
    except (KeyError, ValueError):
        raise SettingsError(f"CERNIQ_CLOCK must read {form!r}, not {raw!r}") from None
    if start.tzinfo is None or not speed >= 0 or set(parts) != {"start", "speed", "anchor"}:
        raise SettingsError(f"CERNIQ_CLOCK must read {form!r} with an offset and speed >= 0")
    return SimulatedClockSpec(start=start, speed=speed, anchor=anchor)


def _llm(env: _Env) -> LlmSettings | None:
    url = _http_url(env, "CERNIQ_LLM_URL")
    api_key = _secret(env, "CERNIQ_LLM_API_KEY")
    model = env.get("CERNIQ_LLM_MODEL")
    if url is None:
        # A key or model without an endpoint would silently fall back to the lexicon.
        for name, value in (("CERNIQ_LLM_API_KEY", api_key), ("CERNIQ_LLM_MODEL", model)):
            if value is not None:
                raise SettingsError(f"{name} is set but CERNIQ_LLM_URL is not")
        return None
    if model is None:
        raise SettingsError("CERNIQ_LLM_MODEL must be set when CERNIQ_LLM_URL is")
    if not model.isprintable() or model.strip() != model:
        raise SettingsError("CERNIQ_LLM_MODEL contains control characters or surrounding spaces")
    return LlmSettings(url=url, model=model, api_key=api_key)
