"""The composition root: the one place that picks concrete adapters and wires them together.

Entrypoints (the CLI, the HTTP app, workers, the scheduler) call `bootstrap(settings)` and take
what they need from the returned `Container`; nothing else imports adapters to build objects.
The event log is opened separately with `open_event_store(settings, role=...)`, because a
process may need it as more than one database role (see `EventLog`).
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Self

from cerniq_outreach.adapters.channels.instantly import instantly_channel
from cerniq_outreach.adapters.channels.resend import resend_channel
from cerniq_outreach.adapters.channels.sandbox import (
    SandboxProviders,
    SandboxRates,
    SandboxSecrets,
)
from cerniq_outreach.adapters.channels.timelinesai import timelinesai_channel
from cerniq_outreach.adapters.clock import AnchoredClock, SystemClock
from cerniq_outreach.adapters.eventstore.postgres import PostgresEventStore
from cerniq_outreach.adapters.eventstore.sqlite import SqliteEventStore, SqliteReadModels
from cerniq_outreach.adapters.jobs_dramatiq import DramatiqJobQueue, close_broker, open_broker
from cerniq_outreach.adapters.jobs_inline import InlineJobQueue
from cerniq_outreach.adapters.leader_lock import FileLeaderLock, LeaderLock, PostgresLeaderLock
from cerniq_outreach.adapters.migrations import migrate_sqlite_connection
from cerniq_outreach.adapters.quota.memory import MemoryQuotaGuardian, MemoryRateLimiter
from cerniq_outreach.adapters.quota.redis_guardian import RedisQuotaGuardian
from cerniq_outreach.adapters.quota.redis_rate_limiter import RedisRateLimiter
from cerniq_outreach.adapters.read_models_postgres import PostgresReadModels
from cerniq_outreach.adapters.vault import PostgresVault, SqliteVault
from cerniq_outreach.adapters.webhooks.inbox import PostgresWebhookInbox, SqlWebhookInbox
from cerniq_outreach.adapters.webhooks.receiver import WebhookReceiver
from cerniq_outreach.adapters.webhooks.verify import SharedSecretVerifier, SvixVerifier
from cerniq_outreach.application.catalog import Catalog, load_catalog
from cerniq_outreach.application.company_stop import CompanyStop
from cerniq_outreach.application.contact_suppression import ContactSuppression
from cerniq_outreach.application.dispatch import dispatcher
from cerniq_outreach.application.enrolment import Enrolment
from cerniq_outreach.application.jobs import (
    ANALYSE_REPLY,
    CHECK_SLAS,
    COMPANY_STOP,
    DAILY_STATS,
    PHONE_HEALTH,
    PROCESS_WEBHOOK,
    SEND_COLD_EMAIL,
    SEND_WARM_EMAIL,
    SEND_WHATSAPP,
)
from cerniq_outreach.application.journeys import JourneyCommands
from cerniq_outreach.application.metrics import Counters
from cerniq_outreach.application.phone_directory import PhoneQuotaSource
from cerniq_outreach.application.phone_pool import PhonePool
from cerniq_outreach.application.projections import FOLLOWER_PROJECTIONS, INLINE_PROJECTIONS
from cerniq_outreach.application.projector import Projector
from cerniq_outreach.application.replies import ReplyAnalysisJob
from cerniq_outreach.application.scheduler import Scheduler, SchedulerSettings
from cerniq_outreach.application.sending import Sender, SendSettings
from cerniq_outreach.application.upkeep import PhoneHealth, SlaCheck, StatsRollup
from cerniq_outreach.application.webhook_lookup import ReadModelLeadLookup
from cerniq_outreach.application.webhooks import WebhookIntake, WebhookProcessor, confirm_with
from cerniq_outreach.domain.business_hours import BusinessHours
from cerniq_outreach.domain.quota_ledger import QuotaPolicy
from cerniq_outreach.domain.reply_analysis import ReplyAnalysis, analyse_reply

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
    from cerniq_outreach.application.jobs import JobHandler, JobQueue
    from cerniq_outreach.application.ports import (
        Clock,
        EventStore,
        PersonalDataVault,
        QuotaGuardian,
        RateLimiter,
        ReadModelDatabase,
    )
    from cerniq_outreach.application.webhooks import WebhookInbox
    from cerniq_outreach.domain.quota_ledger import PhoneQuotaSettings
    from cerniq_outreach.settings import ProviderName, Settings

APP_ROLE: Final = "cerniq_app"
FOLLOWER_ROLE: Final = "cerniq_follower"


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
    return Container(settings=settings, clock=clock if clock is not None else open_clock(settings))


def open_clock(settings: Settings) -> Clock:
    """The wall clock, or the shared simulated one `CERNIQ_CLOCK` describes."""
    spec = settings.clock
    if spec is None:
        return SystemClock()
    return AnchoredClock(spec.start, spec.speed, spec.anchor)


def open_catalog(settings: Settings) -> Catalog:
    """The sequences and templates: `CERNIQ_CATALOG`'s file, else the shipped default."""
    return load_catalog(settings.catalog_path)


def open_enrolment(settings: Settings, log: EventLog, clock: Clock) -> Enrolment:
    """Enrolment of leads into the catalogue's sequences, writing to `log`."""
    return Enrolment(
        JourneyCommands(log.store),
        open_catalog(settings),
        clock,
        suppression=ContactSuppression(log.read_models),
    )


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
        settings.redis_url,
        prefix=settings.redis_prefix,
        policy_for=policy_for,
        phone_source=phone_source,
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
    return RedisRateLimiter(settings.redis_url, prefix=settings.redis_prefix)


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
    sandbox_rates: SandboxRates | None = None,
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
            rates=sandbox_rates,
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


def open_event_store(settings: Settings, *, role: str = APP_ROLE, durable: bool = True) -> EventLog:
    """Open the event log that `CERNIQ_DATABASE_URL` names, with its read models and vault.

    `sqlite:///path`: the store, the read models and the keys share the one file.
    `postgresql://`: each works as the database role `role` — `cerniq_app` (commands, the
    API: one tenant per transaction under row-level security) or `cerniq_follower`
    (projectors, replay, export and audit: every tenant). SQLite has no roles and ignores it.
    The journey read model is an inline projection: updated in the append's transaction.
    `durable=False` lets commits skip the wait for the disk (a demo's throwaway store).
    """
    path = settings.sqlite_path
    if path is not None:
        vault: SqliteVault | PostgresVault = SqliteVault(path)
        store = SqliteEventStore(
            path, vault, inline_projections=INLINE_PROJECTIONS, durable=durable
        )
        # The read models share the store's connections: one set per thread, not two.
        return EventLog(store, store.read_models, vault)
    url = settings.database_url
    vault = PostgresVault(url, role=role)
    return EventLog(
        PostgresEventStore(
            url, vault, role=role, inline_projections=INLINE_PROJECTIONS, durable=durable
        ),
        PostgresReadModels(url, role=role, durable=durable),
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


# --- the engine -------------------------------------------------------------------------------


class _Relay:
    """A webhook sink bound after it is handed out (the sandbox exists before the intake)."""

    def __init__(self) -> None:
        self.target: WebhookSink | None = None

    def __call__(self, provider: str, headers: Mapping[str, str], body: bytes) -> None:
        if self.target is None:  # pragma: no cover - bound in open_engine before any send
            raise RuntimeError("the sandbox delivered a webhook before the engine was wired")
        self.target(provider, headers, body)


class LexiconAnalyser:
    """The offline reply analyser: the deterministic rules of `domain.reply_analysis`."""

    def __init__(self, zone: str) -> None:
        self._zone = zone

    def analyse(self, text: str, *, received_at: datetime) -> ReplyAnalysis:
        """Read one reply."""
        return analyse_reply(text, received_at=received_at, zone=self._zone)


@dataclass(slots=True, kw_only=True)
class Engine:
    """The outreach engine of one process, wired (see `open_engine`).

    `log` is the event log as the application role (commands), `follower` as the follower
    role (every tenant: the scheduler, the dispatcher, projectors, lookups); on SQLite they
    are the same. `jobs` is the in-process queue (embedded) or dramatiq on the broker.
    """

    settings: Settings
    clock: Clock
    log: EventLog
    follower: EventLog
    catalog: Catalog
    counters: Counters
    guardian: QuotaGuardian
    rate_limiter: RateLimiter
    pool: PhonePool
    channels: Channels
    journeys: JourneyCommands
    enrolment: Enrolment
    scheduler: Scheduler
    dispatcher: Projector
    projector: Projector
    receiver: WebhookReceiver
    jobs: JobQueue
    handlers: dict[str, JobHandler]
    broker: Any = None
    _closers: list[Callable[[], None]] = field(default_factory=list)

    @property
    def sandbox(self) -> SandboxProviders | None:
        """The sandbox provider, when any channel is sandboxed."""
        return self.channels.sandbox

    @property
    def inline_jobs(self) -> InlineJobQueue | None:
        """The in-process job queue (embedded mode), else None."""
        return self.jobs if isinstance(self.jobs, InlineJobQueue) else None

    def close(self) -> None:
        """Stop the job threads and release every connection."""
        for close in reversed(self._closers):
            close()
        self._closers.clear()


def open_engine(
    settings: Settings,
    *,
    clock: Clock | None = None,
    sandbox_seed: int = 0,
    sandbox_rates: SandboxRates | None = None,
    run_jobs: bool = True,
    inline_workers: int = 4,
    release_thread: bool = True,
    queue_name: str | None = None,
    scheduler_settings: SchedulerSettings | None = None,
    durable: bool = True,
) -> Engine:
    """Wire the engine for `settings`: embedded, or production on PostgreSQL, Redis, a broker.

    Args:
        settings: the configuration.
        clock: the time (the demo's simulated clock); default `open_clock(settings)`.
        sandbox_seed: the sandbox provider's seed (the same seed, the same outcomes).
        sandbox_rates: the sandbox's outcome rates (default: `SandboxRates()`).
        run_jobs: with a broker, register the job handlers so this process can run them
            (a worker); the scheduler and the API only enqueue.
        inline_workers: threads of the in-process queue (no broker).
        release_thread: the in-process queue releases delayed jobs by itself (a frozen
            simulated clock's driver calls `release_due` instead).
        queue_name: the broker queue (default `CERNIQ_BROKER_QUEUE`).
        scheduler_settings: pacing and batch sizes.
        durable: commit to disk before answering (SQLite); False only for a demo's store.
    """
    clock = clock if clock is not None else open_clock(settings)
    closers: list[Callable[[], None]] = []
    log = open_event_store(settings, role=APP_ROLE, durable=durable)
    closers.append(log.close)
    if settings.sqlite_path is not None:
        follower = log
    else:
        follower = open_event_store(settings, role=FOLLOWER_ROLE, durable=durable)
        closers.append(follower.close)
    counters = Counters()
    catalog = open_catalog(settings)
    policy_for = quota_policy(settings)
    source = PhoneQuotaSource(follower.read_models, clock, policy_for)
    guardian = open_quota_guardian(settings, policy_for=policy_for, phone_source=source)
    closers.append(guardian.close)
    pool = PhonePool(log.store, follower.read_models, guardian, clock, policy_for=policy_for)
    rate_limiter = open_rate_limiter(settings)
    relay = _Relay()
    channels = open_channels(
        settings,
        rate_limiter,
        clock,
        sandbox_sink=relay,
        sandbox_seed=sandbox_seed,
        sandbox_rates=sandbox_rates,
    )
    closers.append(channels.close)
    journeys = JourneyCommands(log.store)
    projector = Projector(follower.store, follower.read_models, FOLLOWER_PROJECTIONS)
    sender = Sender(
        journeys=journeys,
        catalog=catalog,
        whatsapp=channels.whatsapp,
        cold_email=channels.cold_email,
        warm_email=channels.warm_email,
        phones=pool.directory,
        guardian=guardian,
        clock=clock,
        counters=counters,
        policy_for=policy_for,
        settings=SendSettings(attempt_lease=_send_lease(settings, clock)),
    )
    processor = WebhookProcessor(
        log.store,
        ReadModelLeadLookup(follower.read_models),
        counters,
        confirm=confirm_with(channels.whatsapp) if settings.timelinesai.live else None,
    )
    analysis = ReplyAnalysisJob(
        store=log.store,
        journeys=journeys,
        analyser=LexiconAnalyser(settings.timezone.key),
        clock=clock,
    )
    sandbox = channels.sandbox
    link = (
        sandbox.whatsapp.connect
        if sandbox is not None and channels.whatsapp is sandbox.whatsapp
        else None
    )
    handlers: dict[str, JobHandler] = {
        SEND_WHATSAPP: sender.handle,
        SEND_COLD_EMAIL: sender.handle,
        SEND_WARM_EMAIL: sender.handle,
        PROCESS_WEBHOOK: processor.handle,
        ANALYSE_REPLY: analysis.handle,
        CHECK_SLAS: SlaCheck(follower.read_models, clock, counters).handle,
        PHONE_HEALTH: PhoneHealth(pool, channels.whatsapp, link=link).handle,
        DAILY_STATS: StatsRollup(projector).handle,
        COMPANY_STOP: CompanyStop(journeys, follower.read_models, clock).handle,
    }
    jobs: JobQueue
    broker = None
    if settings.broker_url is None:
        inline = InlineJobQueue(
            handlers,
            counters,
            clock=clock,
            workers=inline_workers,
            release_thread=release_thread,
        )
        closers.append(inline.close)
        jobs = inline
    else:
        broker = open_broker(settings.broker_url, namespace=settings.redis_prefix.rstrip(":"))
        closers.append(lambda: close_broker(broker))
        jobs = DramatiqJobQueue(
            broker,
            queue_name=queue_name or settings.broker_queue,
            clock=clock,
            handlers=handlers if run_jobs else None,
            counters=counters,
        )
    inbox = _webhook_inbox(settings, log)
    intake = WebhookIntake(inbox, jobs, clock, counters)
    receiver = WebhookReceiver(
        intake,
        resend=SvixVerifier(_webhook_secret(settings, channels, "resend"), clock),
        timelinesai=SharedSecretVerifier(_webhook_secret(settings, channels, "timelinesai")),
        instantly=SharedSecretVerifier(_webhook_secret(settings, channels, "instantly")),
    )
    relay.target = receiver
    scheduler = Scheduler(
        journeys=journeys,
        follower_store=follower.store,
        read_models=follower.read_models,
        catalog=catalog,
        guardian=guardian,
        phones=pool.directory,
        clock=clock,
        policy_for=policy_for,
        settings=scheduler_settings,
        suppression=ContactSuppression(follower.read_models),
    )
    return Engine(
        settings=settings,
        clock=clock,
        log=log,
        follower=follower,
        catalog=catalog,
        counters=counters,
        guardian=guardian,
        rate_limiter=rate_limiter,
        pool=pool,
        channels=channels,
        journeys=journeys,
        enrolment=Enrolment(
            journeys, catalog, clock, suppression=ContactSuppression(follower.read_models)
        ),
        scheduler=scheduler,
        dispatcher=dispatcher(follower.store, follower.read_models, jobs),
        projector=projector,
        receiver=receiver,
        jobs=jobs,
        handlers=handlers,
        broker=broker,
        _closers=closers,
    )


def _send_lease(settings: Settings, clock: Clock) -> timedelta:
    """`CERNIQ_SEND_LEASE_SECONDS` of real time, measured on `clock`.

    A simulated clock runs `speed` times faster; a stopped one (the demo's, moved step by
    step) counts as real time.
    """
    speed = getattr(clock, "speed", 1.0) or 1.0
    return timedelta(seconds=settings.send_lease_seconds * speed)


def _webhook_inbox(settings: Settings, log: EventLog) -> WebhookInbox:
    if settings.sqlite_path is not None:
        return SqlWebhookInbox(log.read_models)
    return PostgresWebhookInbox(settings.database_url, role=APP_ROLE)


def _webhook_secret(settings: Settings, channels: Channels, provider: ProviderName) -> str | None:
    """The secret webhooks of `provider` are checked with: the sandbox's when it stands in."""
    if settings.provider(provider).live or channels.sandbox is None:
        return settings.provider(provider).webhook_secret
    return getattr(channels.sandbox.secrets, provider)  # type: ignore[no-any-return]


def open_leader_lock(settings: Settings) -> LeaderLock:
    """The scheduler's lock: advisory on PostgreSQL, a file beside the SQLite database."""
    path = settings.sqlite_path
    if path is None:
        return PostgresLeaderLock(settings.database_url)
    return FileLeaderLock(path.with_name(path.name + ".scheduler.lock"))
