"""The composition root: the one place that picks concrete adapters and wires them together.

Entrypoints (the CLI, the HTTP app, workers, the scheduler) call `bootstrap(settings)` and take
what they need from the returned `Container`; nothing else imports adapters to build objects.
The event log is opened separately with `open_event_store(settings, role=...)`, because a
process may need it as more than one database role (see `EventLog`).
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, NamedTuple, Self

from cerniq_outreach.adapters.channels.instantly import instantly_channel
from cerniq_outreach.adapters.channels.resend import resend_channel
from cerniq_outreach.adapters.channels.sandbox import SandboxProviders, SandboxSecrets
from cerniq_outreach.adapters.channels.timelinesai import timelinesai_channel
from cerniq_outreach.adapters.clock import SystemClock
from cerniq_outreach.adapters.eventstore.postgres import PostgresEventStore
from cerniq_outreach.adapters.eventstore.sqlite import SqliteEventStore, SqliteReadModels
from cerniq_outreach.adapters.migrations import migrate_sqlite_connection
from cerniq_outreach.adapters.quota.memory import MemoryQuotaGuardian, MemoryRateLimiter
from cerniq_outreach.adapters.quota.redis_guardian import RedisQuotaGuardian
from cerniq_outreach.adapters.quota.redis_rate_limiter import RedisRateLimiter
from cerniq_outreach.adapters.read_models_postgres import PostgresReadModels
from cerniq_outreach.adapters.vault import PostgresVault, SqliteVault
from cerniq_outreach.application.phone_directory import PhoneQuotaSource
from cerniq_outreach.application.phone_pool import PhonePool
from cerniq_outreach.application.projections import INLINE_PROJECTIONS
from cerniq_outreach.domain.business_hours import BusinessHours
from cerniq_outreach.domain.quota_ledger import QuotaPolicy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from datetime import date
    from types import TracebackType

    from cerniq_outreach.adapters.channels.sandbox import WebhookSink
    from cerniq_outreach.application.channels import (
        ColdEmailChannel,
        WarmEmailChannel,
        WhatsAppChannel,
    )
    from cerniq_outreach.application.ports import (
        Clock,
        EventStore,
        PersonalDataVault,
        QuotaGuardian,
        RateLimiter,
        ReadModelDatabase,
    )
    from cerniq_outreach.domain.quota_ledger import PhoneQuotaSettings
    from cerniq_outreach.settings import Settings

APP_ROLE: Final = "cerniq_app"
FOLLOWER_ROLE: Final = "cerniq_follower"
REDIS_PREFIX: Final = "cerniq:"


@dataclass(frozen=True, slots=True)
class Container:
    """The wired object graph of one process."""

    settings: Settings
    clock: Clock


def bootstrap(settings: Settings, *, clock: Clock | None = None) -> Container:
    """Build the object graph for `settings`.

    Args:
        settings: the validated configuration.
        clock: a clock to use instead of the wall clock (the demo's simulated time, tests).
    """
    return Container(settings=settings, clock=clock if clock is not None else SystemClock())


def quota_policy(settings: Settings) -> Callable[[str], QuotaPolicy]:
    """Each tenant's quota policy: business hours in `CERNIQ_TIMEZONE`, the default ramp.

    One policy for every tenant until tenants carry their own hours (issue #8).
    """
    policy = QuotaPolicy(hours=BusinessHours(zone=settings.timezone.key))
    return lambda _tenant: policy


def open_quota_guardian(
    settings: Settings,
    *,
    policy_for: Callable[[str], QuotaPolicy] | None = None,
    phone_source: Callable[
        [str], tuple[Sequence[PhoneQuotaSettings], Mapping[tuple[str, date], int]]
    ]
    | None = None,
) -> QuotaGuardian:
    """The quota guardian: Redis Lua with `CERNIQ_REDIS_URL`, else in-process.

    `phone_source(tenant)` gives a tenant's phones and today's recorded usage (the phone
    pool reads them from the database); the Redis guardian calls it when it finds the
    tenant's keys gone (a Redis restarted empty) and rebuilds them before it decides.
    """
    policy_for = policy_for or quota_policy(settings)
    if settings.redis_url is None:
        return MemoryQuotaGuardian(policy_for)
    return RedisQuotaGuardian(
        settings.redis_url, prefix=REDIS_PREFIX, policy_for=policy_for, phone_source=phone_source
    )


def open_phone_pool(
    settings: Settings, log: EventLog, clock: Clock
) -> tuple[PhonePool, QuotaGuardian]:
    """The phone pool on `log` with the configured guardian (the caller closes the guardian).

    The guardian reloads a tenant from the pool's read models when Redis lost its keys.
    A process that decides sends calls `pool.sync_guardian()` at start-up (on PostgreSQL
    with a follower-role log, which sees every tenant).
    """
    policy_for = quota_policy(settings)
    source = PhoneQuotaSource(log.read_models, clock, policy_for)
    guardian = open_quota_guardian(settings, policy_for=policy_for, phone_source=source)
    return PhonePool(log.store, log.read_models, guardian, clock, policy_for=policy_for), guardian


def open_rate_limiter(settings: Settings) -> RateLimiter:
    """Provider rate limits: shared through Redis when configured, else per process."""
    if settings.redis_url is None:
        return MemoryRateLimiter()
    return RedisRateLimiter(settings.redis_url, prefix=REDIS_PREFIX)


@dataclass(frozen=True, slots=True)
class Channels:
    """The three outbound channels, each live or sandboxed (`sandbox` is set when any is)."""

    whatsapp: WhatsAppChannel
    cold_email: ColdEmailChannel
    warm_email: WarmEmailChannel
    sandbox: SandboxProviders | None

    def close(self) -> None:
        """Close the live adapters' connection pools (the sandbox holds none)."""
        for channel in (self.whatsapp, self.cold_email, self.warm_email):
            close = getattr(channel, "close", None)
            if close is not None:
                close()


def _drop_webhook(_provider: str, _headers: Mapping[str, str], _body: bytes) -> None:
    """A sandbox sink that discards every event (a one-off command processes none)."""


def open_channels(
    settings: Settings,
    rate_limiter: RateLimiter,
    clock: Clock,
    *,
    sandbox_sink: WebhookSink | None = None,
    sandbox_seed: int = 0,
) -> Channels:
    """Each channel live when its provider's API key is set, else the sandbox's.

    The sandbox posts its simulated webhooks to `sandbox_sink`; without one they are dropped,
    which suits a one-off command such as `channels send-test` (the engine passes its intake).
    Its webhook secrets are generated per call: only the sink ever sees them.
    """
    sandbox = None
    if not all(settings.provider(name).live for name in ("timelinesai", "instantly", "resend")):
        sandbox = SandboxProviders(
            clock,
            seed=sandbox_seed,
            deliver=sandbox_sink if sandbox_sink is not None else _drop_webhook,
            secrets=SandboxSecrets.generate(),
        )
    whatsapp: WhatsAppChannel
    cold: ColdEmailChannel
    warm: WarmEmailChannel
    if settings.timelinesai.live or sandbox is None:
        whatsapp = timelinesai_channel(settings.timelinesai, rate_limiter, clock)
    else:
        whatsapp = sandbox.whatsapp
    if settings.instantly.live or sandbox is None:
        cold = instantly_channel(settings.instantly, rate_limiter, clock)
    else:
        cold = sandbox.cold_email
    if settings.resend.live or sandbox is None:
        warm = resend_channel(settings.resend, rate_limiter, clock)
    else:
        warm = sandbox.warm_email
    return Channels(whatsapp=whatsapp, cold_email=cold, warm_email=warm, sandbox=sandbox)


class EventLog(NamedTuple):
    """The event store with the read models and the vault it writes through.

    A tuple, so `store, read_models, vault = open_event_store(settings)` works, and a
    context manager that closes all three.
    """

    store: EventStore
    read_models: ReadModelDatabase
    vault: PersonalDataVault

    def close(self) -> None:
        """Release every connection the three hold."""
        self.store.close()
        for resource in (self.read_models, self.vault):
            close = getattr(resource, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_event_store(settings: Settings, *, role: str = APP_ROLE) -> EventLog:
    """Open the event log that `CERNIQ_DATABASE_URL` names, with its read models and vault.

    `sqlite:///path`: the store, the read models and the keys share the one file.
    `postgresql://`: each works as the database role `role` — `cerniq_app` (commands, the
    API: one tenant per transaction under row-level security) or `cerniq_follower`
    (projectors, replay, export and audit: every tenant). SQLite has no roles and ignores it.
    The journey read model is an inline projection: updated in the append's transaction.
    """
    path = settings.sqlite_path
    if path is not None:
        vault: SqliteVault | PostgresVault = SqliteVault(path)
        store = SqliteEventStore(path, vault, inline_projections=INLINE_PROJECTIONS)
        # The read models share the store's connections: one set per thread, not two.
        return EventLog(store, store.read_models, vault)
    url = settings.database_url
    vault = PostgresVault(url, role=role)
    return EventLog(
        PostgresEventStore(url, vault, role=role, inline_projections=INLINE_PROJECTIONS),
        PostgresReadModels(url, role=role),
        vault,
    )


@contextmanager
def scratch_read_models() -> Iterator[SqliteReadModels]:
    """An empty, migrated in-memory read-model database (`replay --verify` rebuilds into it).

    SQLite whatever the live backend: the read models are written in SQL both accept, and
    the comparison brings values to one form, so a scratch copy needs no server and leaves
    nothing behind when the block ends.
    """
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    try:
        migrate_sqlite_connection(conn)
        yield SqliteReadModels(conn)
    finally:
        conn.close()
