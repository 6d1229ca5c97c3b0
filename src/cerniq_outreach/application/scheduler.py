"""The scheduler: finds journeys whose next step is due and puts that step's message in the log.

One tick (`Scheduler.tick`) does three things, in order:

1. FOLLOW. `ScheduleIndexProjection` follows the global log (checkpoint committed with its
   writes, like every projector) and marks each journey that had an event `dirty` in
   `journey_schedule`. It also keeps folded journey states in memory, so working a journey
   out again rarely needs its stream read.
2. WORK OUT. Each dirty journey is folded and asked `next_action` (sequence, business
   hours, consent): a due step gives `due_at`; waiting or blocked gives none; a sequence
   with no step left that can reach the lead is ended (`ExhaustSequence`).
3. QUEUE. Each journey due by now gets its step: rendered (the lead's A/B variant, spintax,
   deterministic), quota reserved for WhatsApp (the lead's sticky phone, else the ACTIVE
   phone with most quota left among those free to send now), then `MessageQueued` appended
   with a message id derived from (lead, sequence, step) — one per step, whatever retries.
   A refusal (quota, business hours, a phone not ACTIVE) moves `due_at` to the retry time
   the guardian gives. A failed append gives the reservation back (under-sending is the
   only possible error, never over-sending).

PACING. WhatsApp messages on one phone are spaced by a jitter drawn per message
(`domain.quota.send_jitter`): after queueing on a phone, the phone is not used again until
its next slot. The slots live in this process (the scheduler runs once per deployment); a
restart forgets them, so the first sends after a restart may come closer together.

Only one scheduler may tick at a time: the caller holds the lock (PostgreSQL advisory lock
in production, a process lock embedded); see `entrypoints`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import msgspec

from cerniq_outreach.application.projections.base import iso
from cerniq_outreach.application.records import Metadata
from cerniq_outreach.application.whatsapp_routing import route_whatsapp
from cerniq_outreach.domain.commands import (
    ExhaustSequence,
    OptOut,
    QueueMessage,
    RequestReview,
)
from cerniq_outreach.domain.consent import DEFAULT_CONSENT_POLICY, ConsentPolicy
from cerniq_outreach.domain.enums import (
    Channel,
    OptOutScope,
    PhoneStatus,
    Priority,
    QuotaRefusal,
    ReviewReason,
    opt_out_scope_of,
)
from cerniq_outreach.domain.errors import DomainError, TemplateError
from cerniq_outreach.domain.events import Event
from cerniq_outreach.domain.journey import Journey, evolve
from cerniq_outreach.domain.outbound import whatsapp_cost
from cerniq_outreach.domain.quota import PhoneQuotaView, effective_limit, send_jitter
from cerniq_outreach.domain.quota_ledger import DEFAULT_POLICY, QuotaPolicy
from cerniq_outreach.domain.sequences import Exhausted, Sequence, StepDue, next_action

if TYPE_CHECKING:
    from cerniq_outreach.application.catalog import Catalog
    from cerniq_outreach.application.contact_suppression import ContactSuppression
    from cerniq_outreach.application.journeys import JourneyCommands
    from cerniq_outreach.application.phone_directory import PhoneDirectory, PhoneView
    from cerniq_outreach.application.ports import (
        Clock,
        EventStore,
        QuotaGuardian,
        ReadModelDatabase,
        SqlTx,
    )
    from cerniq_outreach.application.records import RecordedEvent
    from cerniq_outreach.application.whatsapp_routing import Routing
    from cerniq_outreach.domain.commands import AnyCommand
    from cerniq_outreach.domain.quota import QuotaDecision
    from cerniq_outreach.domain.quota_ledger import Reservation
    from cerniq_outreach.domain.sequences import SequenceStep

_log = logging.getLogger(__name__)

MESSAGE_NAMESPACE: Final = uuid.UUID("0d7c4a61-3f2b-5e8d-a1c9-7b6e5f4d3c2b")
SCHEDULER_ACTOR: Final = "scheduler"


def message_id_for(tenant_id: str, lead_id: str, sequence_id: str, step: int) -> str:
    """The message id of a sequence step for a lead: one per step, the same on every retry."""
    return str(
        uuid.uuid5(MESSAGE_NAMESPACE, f"{tenant_id}\x1f{lead_id}\x1f{sequence_id}\x1f{step}")
    )


class SchedulerSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How the scheduler works; the defaults suit production.

    Attributes:
        jitter_low_seconds, jitter_high_seconds: spacing between two WhatsApp messages on
            one phone (drawn per message within these bounds).
        refused_retry: when to look again at a journey refused without a retry time.
        batch: journeys worked out or queued per pass of a tick.
        state_cache: journey states kept in memory (0: always read the stream).
    """

    jitter_low_seconds: float = 45.0
    jitter_high_seconds: float = 150.0
    refused_retry: timedelta = timedelta(minutes=15)
    batch: int = 500
    state_cache: int = 50_000


class TickReport(msgspec.Struct, kw_only=True):
    """What one tick did."""

    followed: int = 0
    worked_out: int = 0
    queued: int = 0
    deferred: int = 0
    exhausted: int = 0
    refused: int = 0


# --- the index ------------------------------------------------------------------------------

_MARK_DIRTY = """
INSERT INTO journey_schedule (tenant_id, lead_id, dirty) VALUES (:tenant, :lead, 1)
ON CONFLICT (tenant_id, lead_id) DO UPDATE SET dirty = 1
"""
_DIRTY = """
SELECT tenant_id, lead_id FROM journey_schedule WHERE dirty = 1
ORDER BY tenant_id, lead_id LIMIT :limit
"""
_SET_DUE = """
UPDATE journey_schedule
SET dirty = 0, due_at = :due, channel = :channel, phone_id = :phone, reason = :reason
WHERE tenant_id = :tenant AND lead_id = :lead
"""
_DUE_OTHER = """
SELECT tenant_id, lead_id FROM journey_schedule
WHERE due_at IS NOT NULL AND due_at <= :now AND dirty = 0
    AND (channel IS NULL OR channel <> 'WHATSAPP')
ORDER BY due_at, tenant_id, lead_id LIMIT :limit
"""
_WHATSAPP_TENANTS = """
SELECT DISTINCT tenant_id FROM journey_schedule
WHERE channel = 'WHATSAPP' AND due_at IS NOT NULL AND due_at <= :now AND dirty = 0
"""
_DUE_ON_PHONE = """
SELECT lead_id FROM journey_schedule
WHERE tenant_id = :tenant AND phone_id = :phone AND channel = 'WHATSAPP'
    AND due_at IS NOT NULL AND due_at <= :now AND dirty = 0
ORDER BY due_at, lead_id LIMIT :limit
"""
# The first few due follow-ups of every phone, in one query (one phone sends one a tick).
_DUE_PER_PHONE = """
SELECT lead_id, phone_id FROM (
    SELECT lead_id, phone_id,
        ROW_NUMBER() OVER (PARTITION BY phone_id ORDER BY due_at, lead_id) AS rank
    FROM journey_schedule
    WHERE tenant_id = :tenant AND channel = 'WHATSAPP' AND phone_id IS NOT NULL
        AND due_at IS NOT NULL AND due_at <= :now AND dirty = 0
) ranked
WHERE rank <= :limit
ORDER BY phone_id, rank
"""
_DUE_NEW = """
SELECT lead_id FROM journey_schedule
WHERE tenant_id = :tenant AND phone_id IS NULL AND channel = 'WHATSAPP'
    AND due_at IS NOT NULL AND due_at <= :now AND dirty = 0
ORDER BY due_at, lead_id LIMIT :limit
"""
_POSTPONE = """
UPDATE journey_schedule SET due_at = :due, reason = :reason
WHERE tenant_id = :tenant AND lead_id = :lead AND dirty = 0
"""
_MIRROR = """
UPDATE gold_lead_journey SET next_action_at = :due WHERE tenant_id = :tenant AND lead_id = :lead
"""


class ScheduleIndexProjection:
    """Marks journeys that had an event as needing their next step worked out again.

    Also folds the events into `cache` (journey states by (tenant, lead)), applying an
    event only onto the state one version before it; anything else drops the entry, so a
    cached state is always exactly a prefix of the stream, never a guess.
    """

    name: str = "journey_schedule"
    tables: tuple[str, ...] = ("journey_schedule",)

    def __init__(self, cache: JourneyCache) -> None:
        self.cache = cache

    def apply(self, tx: SqlTx, record: RecordedEvent) -> None:
        """Mark the event's journey dirty and fold it into the cached state."""
        event = record.event
        if not isinstance(event, Event):
            return  # phone events: phones are read when queueing
        key = (record.tenant_id, record.stream_id)
        tx.execute(_MARK_DIRTY, {"tenant": key[0], "lead": key[1]})
        self.cache.fold(key, record.stream_version, event)


class JourneyCache:
    """Folded journey states, kept in step by the index projection; bounded, oldest out."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._states: dict[tuple[str, str], Journey] = {}

    def fold(self, key: tuple[str, str], version: int, event: Event) -> None:
        """Apply the event at `version` if the cached state is at `version - 1`."""
        if self._size <= 0:
            return
        state = self._states.pop(key, None)
        if version == 1:
            state = Journey()
        if state is None or state.version != version - 1:
            return
        self._states[key] = evolve(state, event)
        if len(self._states) > self._size:
            del self._states[next(iter(self._states))]

    def get(self, key: tuple[str, str]) -> Journey | None:
        """The cached state, or None."""
        return self._states.get(key)

    def put(self, key: tuple[str, str], state: Journey) -> None:
        """Remember a state read from the store."""
        if self._size > 0:
            self._states[key] = state


# --- pacing ---------------------------------------------------------------------------------


class PhonePacer:
    """When each phone may send its next WhatsApp message (jittered spacing)."""

    def __init__(self, low_seconds: float, high_seconds: float) -> None:
        self._low = low_seconds
        self._high = high_seconds
        self._next: dict[tuple[str, str], datetime] = {}

    def free_at(self, tenant_id: str, phone_id: str) -> datetime | None:
        """The phone's next slot (None: free now)."""
        return self._next.get((tenant_id, phone_id))

    def is_free(self, tenant_id: str, phone_id: str, now: datetime) -> bool:
        """Whether the phone may send now."""
        slot = self._next.get((tenant_id, phone_id))
        return slot is None or slot <= now

    def used(self, tenant_id: str, phone_id: str, now: datetime, message_id: str) -> None:
        """A message was queued on the phone now: its next slot is a jitter away."""
        gap = send_jitter(f"{phone_id}\x1f{message_id}", self._low, self._high)
        self._next[(tenant_id, phone_id)] = now + timedelta(seconds=gap)


# --- the scheduler --------------------------------------------------------------------------


class _Pool:
    """The tenant's phones as this tick sees them, with new conversations counted so far.

    Limits and usage are read once per tick (the guardian has the last word on each send;
    these only save asking it about phones that cannot take a new conversation).
    """

    def __init__(
        self,
        phones: list[PhoneView],
        guardian: QuotaGuardian,
        tenant_id: str,
        policy: QuotaPolicy,
        today: date,
    ) -> None:
        self.by_id = {p.phone_id: p for p in phones}
        self.active = [p for p in phones if p.status is PhoneStatus.ACTIVE]
        self._guardian = guardian
        self._tenant = tenant_id
        self._today = today
        self._limit = {
            p.phone_id: effective_limit(
                PhoneQuotaView(
                    phone_id=p.phone_id,
                    status=p.status,
                    daily_limit=p.daily_limit,
                    warmup_started=p.warmup_started,
                ),
                today,
                policy.ramp,
            )[0]
            for p in self.active
        }
        self._used: dict[str, int] = {}

    def status(self, phone_id: str) -> PhoneStatus | None:
        """A phone's status (None: not in the pool)."""
        phone = self.by_id.get(phone_id)
        return None if phone is None else phone.status

    def left(self, phone: PhoneView) -> int:
        """New conversations the phone may still start today, as far as this tick knows."""
        used = self._used.get(phone.phone_id)
        if used is None:
            used = self._used[phone.phone_id] = self._guardian.usage(
                self._tenant, phone.phone_id, self._today
            )
        return self._limit.get(phone.phone_id, 0) - used

    def counted(self, phone_id: str, cost: int) -> None:
        """A message was just queued on the phone (cost 1: a new conversation)."""
        self._used[phone_id] = self._used.get(phone_id, 0) + cost


class Scheduler:
    """Ticks the engine forward: follow the log, work out due times, queue due steps.

    Args:
        journeys: runs commands on journeys (application role on PostgreSQL).
        follower_store: the log to follow (follower role: every tenant).
        read_models: where `journey_schedule` lives (follower role).
        catalog: the sequences and templates.
        guardian: the quota guardian.
        phones: the phone pool's read model (statuses, numbers, limits).
        clock: the time of every decision.
        policy_for: each tenant's quota policy (business hours, warm-up ramp).
        consent_for: each tenant's consent policy.
        settings: pacing and batch sizes.
        suppression: other leads of the same person whose objections close channels here.
    """

    def __init__(
        self,
        *,
        journeys: JourneyCommands,
        follower_store: EventStore,
        read_models: ReadModelDatabase,
        catalog: Catalog,
        guardian: QuotaGuardian,
        phones: PhoneDirectory,
        clock: Clock,
        policy_for: Callable[[str], QuotaPolicy] = lambda _t: DEFAULT_POLICY,
        consent_for: Callable[[str], ConsentPolicy] = lambda _t: DEFAULT_CONSENT_POLICY,
        settings: SchedulerSettings | None = None,
        suppression: ContactSuppression | None = None,
    ) -> None:
        # Imported here: the projector module imports ports at type-check time only.
        from cerniq_outreach.application.projector import Projector  # noqa: PLC0415

        self._settings = settings or SchedulerSettings()
        self._journeys = journeys
        self._db = read_models
        self._catalog = catalog
        self._guardian = guardian
        self._phones = phones
        self._clock = clock
        self._policy_for = policy_for
        self._consent_for = consent_for
        self._suppression = suppression
        self.cache = JourneyCache(self._settings.state_cache)
        self.index = ScheduleIndexProjection(self.cache)
        self._projector = Projector(follower_store, read_models, [self.index])
        self.pacer = PhonePacer(
            self._settings.jitter_low_seconds, self._settings.jitter_high_seconds
        )

    # --- the tick ---------------------------------------------------------------------------

    def tick(self) -> TickReport:
        """One pass: follow the log, work out dirty journeys, queue what is due by now."""
        report = TickReport()
        report.followed = self._projector.catch_up(self._settings.batch)
        self._work_out(report)
        now = self._clock.now()
        self._queue_due(now, report)
        return report

    def next_due(self) -> datetime | None:
        """The earliest due time in the index (None: nothing scheduled)."""
        with self._db.transaction() as tx:
            rows = tx.fetchall(
                "SELECT MIN(due_at) AS due FROM journey_schedule WHERE due_at IS NOT NULL"
            )
        value = rows[0]["due"] if rows else None
        if value is None:
            return None
        return value if isinstance(value, datetime) else datetime.fromisoformat(value)

    # --- working out due times --------------------------------------------------------------

    def _work_out(self, report: TickReport) -> None:
        while True:
            with self._db.transaction() as tx:
                rows = tx.fetchall(_DIRTY, {"limit": self._settings.batch})
            if not rows:
                return
            updates = [self._due_of(r["tenant_id"], r["lead_id"], report) for r in rows]
            with self._db.transaction() as tx:
                for params in updates:
                    tx.execute(_SET_DUE, params)
                    tx.execute(_MIRROR, params)
            report.worked_out += len(updates)

    def _due_of(self, tenant_id: str, lead_id: str, report: TickReport) -> dict[str, Any]:
        """The index row of a journey: when its next step is due, on which channel and phone."""
        row: dict[str, Any] = {
            "tenant": tenant_id,
            "lead": lead_id,
            "due": None,
            "channel": None,
            "phone": None,
            "reason": None,
        }
        journey = self._state(tenant_id, lead_id)
        if not journey.enrolled or journey.sequence_id is None:
            return {**row, "reason": "not enrolled"}
        if not journey.sequence_active:
            return {**row, "reason": "no sequence running"}
        if not self._catalog.has_sequence(journey.sequence_id):
            return {**row, "reason": f"sequence {journey.sequence_id} is not in the catalogue"}
        sequence = self._catalog.sequence(journey.sequence_id)
        hours = self._policy_for(tenant_id).hours
        action = next_action(sequence, journey, hours, self._consent_for(tenant_id))
        if isinstance(action, StepDue):
            return {
                **row,
                "due": iso(action.due_at),
                "channel": action.step.channel.value,
                "phone": journey.phone_id,
            }
        if isinstance(action, Exhausted):
            if action.at > self._clock.now():
                # The lead still has time to answer the last message: look again then.
                ends = f"ends at {action.at.isoformat()}: {action.reason}"
                return {**row, "due": iso(action.at), "reason": ends}
            self._exhaust(tenant_id, lead_id, journey, action.reason)
            report.exhausted += 1
        return {**row, "reason": action.reason}

    def _exhaust(self, tenant_id: str, lead_id: str, journey: Journey, reason: str) -> None:
        command = ExhaustSequence(
            command_id=f"exhaust/{lead_id}/{journey.sequence_id}/{journey.version}",
            at=self._clock.now(),
            reason=reason,
        )
        self._record(tenant_id, lead_id, command, "sequence not ended")

    # --- queueing ---------------------------------------------------------------------------

    def _queue_due(self, now: datetime, report: TickReport) -> None:
        """Queue what is due: emails first, then WhatsApp as far as phones are free.

        WhatsApp leads are read per phone: a phone still pacing (or out of quota) is not
        asked about at all, so its waiting leads cost nothing and block nobody else's.
        """
        postponed: list[dict[str, Any]] = []
        pools: dict[str, _Pool] = {}
        with self._db.transaction() as tx:
            rows = tx.fetchall(_DUE_OTHER, {"now": iso(now), "limit": self._settings.batch})
            tenants = [r["tenant_id"] for r in tx.fetchall(_WHATSAPP_TENANTS, {"now": iso(now)})]
        for row in rows:
            tenant = row["tenant_id"]
            pool = pools.get(tenant) or pools.setdefault(tenant, self._pool(tenant, now))
            self._try(tenant, row["lead_id"], now, pool, report, postponed)
        for tenant in tenants:
            pool = pools.get(tenant) or pools.setdefault(tenant, self._pool(tenant, now))
            self._queue_whatsapp(tenant, now, pool, report, postponed)
        if postponed:
            # Not mirrored to gold_lead_journey: a postponement moves a due time by minutes;
            # the lead's row shows the time worked out from its journey.
            with self._db.transaction() as tx:
                for params in postponed:
                    tx.execute(_POSTPONE, params)

    def _queue_whatsapp(
        self,
        tenant_id: str,
        now: datetime,
        pool: _Pool,
        report: TickReport,
        postponed: list[dict[str, Any]],
    ) -> None:
        """Follow-ups on each free phone (one each), then new contacts for the free phones."""
        params = {"tenant": tenant_id, "now": iso(now), "limit": 3}
        with self._db.transaction() as tx:
            rows = tx.fetchall(_DUE_PER_PHONE, params)
        done: set[str] = set()
        moving: list[str] = []  # banned phones: their leads move to other phones
        for row in rows:
            phone_id = row["phone_id"]
            if pool.status(phone_id) is PhoneStatus.BANNED:
                if phone_id not in moving:
                    moving.append(phone_id)
                continue
            if phone_id in done or not self.pacer.is_free(tenant_id, phone_id, now):
                continue
            if self._try(tenant_id, row["lead_id"], now, pool, report, postponed):
                done.add(phone_id)  # one message a tick: the phone is pacing now
        for phone_id in moving:
            self._queue_new(tenant_id, now, pool, report, postponed, phone=phone_id)
        self._queue_new(tenant_id, now, pool, report, postponed)

    def _queue_new(  # noqa: PLR0917 - the tick's context
        self,
        tenant_id: str,
        now: datetime,
        pool: _Pool,
        report: TickReport,
        postponed: list[dict[str, Any]],
        phone: str | None = None,
    ) -> None:
        """Leads that need a phone (new, or moving off `phone`), as many as phones are free."""
        free = self._free_for_new(tenant_id, now, pool)
        if not free:
            return
        query = _DUE_NEW if phone is None else _DUE_ON_PHONE
        for lead in self._due_leads(query, tenant_id, now, 2 * free, phone=phone):
            if not self._free_for_new(tenant_id, now, pool):
                return
            self._try(tenant_id, lead, now, pool, report, postponed)

    def _free_for_new(self, tenant_id: str, now: datetime, pool: _Pool) -> int:
        """How many ACTIVE phones may start a conversation now (quota left, not pacing)."""
        return sum(
            1
            for p in pool.active
            if pool.left(p) > 0 and self.pacer.is_free(tenant_id, p.phone_id, now)
        )

    def _due_leads(
        self, query: str, tenant_id: str, now: datetime, limit: int, *, phone: str | None
    ) -> list[str]:
        params = {"tenant": tenant_id, "phone": phone, "now": iso(now), "limit": limit}
        with self._db.transaction() as tx:
            return [r["lead_id"] for r in tx.fetchall(query, params)]

    def _try(  # noqa: PLR0917 - the tick's context
        self,
        tenant_id: str,
        lead_id: str,
        now: datetime,
        pool: _Pool,
        report: TickReport,
        postponed: list[dict[str, Any]],
    ) -> bool:
        """Queue one due journey's step; True when it was queued (else maybe postponed)."""
        before = report.queued
        later, reason = self._queue_one(tenant_id, lead_id, now, pool, report)
        if later is not None:
            postponed.append(
                {"tenant": tenant_id, "lead": lead_id, "due": iso(later), "reason": reason}
            )
        return report.queued > before

    def _pool(self, tenant_id: str, now: datetime) -> _Pool:
        policy = self._policy_for(tenant_id)
        return _Pool(
            self._phones.phones(tenant_id),
            self._guardian,
            tenant_id,
            policy,
            policy.hours.local_date(now),
        )

    def _queue_one(
        self, tenant_id: str, lead_id: str, now: datetime, pool: _Pool, report: TickReport
    ) -> tuple[datetime | None, str | None]:
        """Queue the journey's due step; returns a later due time when it must wait.

        The journey comes from the cache the log follower keeps: if it is behind (a reply
        just came in), the append conflicts, the commands are decided again on the fresh
        stream, and a step no longer allowed is refused, its quota given back.
        """
        journey = self._state(tenant_id, lead_id)
        if journey.sequence_id is None or not self._catalog.has_sequence(journey.sequence_id):
            return None, None
        sequence = self._catalog.sequence(journey.sequence_id)
        hours = self._policy_for(tenant_id).hours
        action = next_action(sequence, journey, hours, self._consent_for(tenant_id))
        if isinstance(action, Exhausted) and action.at <= now:
            self._exhaust(tenant_id, lead_id, journey, action.reason)
            report.exhausted += 1
            return None, None
        if not isinstance(action, StepDue):
            return None, None  # the journey moved on; its next event marks it dirty
        if action.due_at > now:
            return action.due_at, None
        held = self._held_back(tenant_id, lead_id, journey, sequence, action.step, now)
        if held is not None:
            if held[0] is None:
                report.refused += 1
            return held
        return self._queue_step(
            tenant_id, lead_id, journey, sequence, action.step, now, pool, report
        )

    def _queue_step(  # noqa: PLR0917 - one step's whole context
        self,
        tenant_id: str,
        lead_id: str,
        journey: Journey,
        sequence: Sequence,
        step: SequenceStep,
        now: datetime,
        pool: _Pool,
        report: TickReport,
    ) -> tuple[datetime | None, str | None]:
        """Route (WhatsApp), render and append one due step."""
        routing: Routing | None = None
        if step.channel is Channel.WHATSAPP:
            routing, wait = self._route(tenant_id, lead_id, journey, now, pool)
            if routing is None or not routing.allowed:
                report.deferred += 1
                return wait, _refusal_text(routing.decision if routing else None)
        assert journey.company is not None  # noqa: S101 - an enrolled journey has one
        try:
            rendered = self._catalog.render_step(
                step, tenant_id=tenant_id, lead_id=lead_id, company=journey.company
            )
        except TemplateError as exc:
            self._give_back(routing.reservation if routing is not None else None)
            self._template_problem(tenant_id, lead_id, step, exc, now)
            report.refused += 1
            return None, None
        message_id = message_id_for(tenant_id, lead_id, sequence.sequence_id, step.number)
        queue = QueueMessage(
            command_id=f"queue/{message_id}",
            at=now,
            message_id=message_id,
            channel=step.channel,
            content_hash=rendered.content_hash,
            sequence_id=sequence.sequence_id,
            step=step.number,
            template_id=rendered.template_id,
            template_version=rendered.template_version,
            quota_cost=routing.cost if routing is not None else 0,
            phone_id=routing.phone_id if routing is not None else None,
        )
        if self._append(
            tenant_id, lead_id, queue, routing=routing, now=now, report=report, state=journey
        ):
            if routing is not None and routing.phone_id is not None:
                self.pacer.used(tenant_id, routing.phone_id, now, message_id)
                pool.counted(routing.phone_id, routing.cost)
            report.queued += 1
        return None, None

    def _append(
        self,
        tenant_id: str,
        lead_id: str,
        queue: QueueMessage,
        *,
        routing: Routing | None,
        now: datetime,
        report: TickReport,
        state: Journey,
    ) -> bool:
        """Append the message (after a phone move, if any); on failure give the quota back."""
        commands: list[Any] = []
        if routing is not None:
            move = routing.reassignment(f"reassign/{queue.message_id}", now)
            if move is not None:
                commands.append(move)
        commands.append(queue)
        reservation = routing.reservation if routing is not None else None
        try:
            self._journeys.run(
                tenant_id,
                lead_id,
                commands,
                metadata=Metadata(actor=SCHEDULER_ACTOR),
                state=state,
            )
        except DomainError as exc:
            self._give_back(reservation)
            _log.info("step not queued", extra={"lead_id": lead_id, "code": exc.code})
            report.refused += 1
            return False
        except Exception:
            self._give_back(reservation)
            raise
        return True

    def _route(
        self, tenant_id: str, lead_id: str, journey: Journey, now: datetime, pool: _Pool
    ) -> tuple[Routing | None, datetime]:
        """Reserve the lead's next WhatsApp message on a phone free to send now.

        Returns the routing (None when every phone is busy) and when to try again if it
        is refused.
        """
        retry = now + self._settings.refused_retry
        current = journey.phone_id
        if current is not None and pool.status(current) is not PhoneStatus.BANNED:
            slot = self.pacer.free_at(tenant_id, current)
            if slot is not None and slot > now:
                return None, slot  # the sticky phone is pacing: wait for its slot
            routing = route_whatsapp(
                self._guardian,
                journey,
                tenant_id=tenant_id,
                lead_id=lead_id,
                at=now,
                phone_status=pool.status,
            )
            return routing, routing.decision.retry_at or retry
        # A new conversation (or a move off a banned phone): the ACTIVE phone with the most
        # quota left among those free to send now; the guardian has the last word on each.
        cost = whatsapp_cost(journey)
        free = [
            p
            for p in pool.by_id.values()
            if p.status is PhoneStatus.ACTIVE
            and p.phone_id != current
            and self.pacer.is_free(tenant_id, p.phone_id, now)
        ]
        ranked = sorted(free, key=lambda p: (-pool.left(p), p.phone_id))
        last: Routing | None = None
        for phone in ranked:
            if pool.left(phone) <= 0 and cost > 0:
                break
            last = route_whatsapp(
                _Pinned(self._guardian, phone.phone_id),
                journey,
                tenant_id=tenant_id,
                lead_id=lead_id,
                at=now,
                phone_status=pool.status,
            )
            if last.allowed:
                return last, now
            if last.decision.reason is QuotaRefusal.OUTSIDE_BUSINESS_HOURS:
                break  # no phone sends now
        if last is not None:
            return last, last.decision.retry_at or retry
        slots = [self.pacer.free_at(tenant_id, p) for p in pool.by_id]
        waits = [s for s in slots if s is not None and s > now]
        return None, min(waits) if waits else retry

    def _held_back(  # noqa: PLR0917 - the step's context
        self,
        tenant_id: str,
        lead_id: str,
        journey: Journey,
        sequence: Sequence,
        step: SequenceStep,
        now: datetime,
    ) -> tuple[datetime | None, str | None] | None:
        """Why a due step may not be queued now (a later time, or none), or None: go."""
        hours = self._policy_for(tenant_id).hours
        if sequence.respect_business_hours and not hours.is_open(now):
            # Due while open but reached after closing (a long queue): the next window.
            return hours.next_open(now), "outside business hours"
        if self._suppressed(tenant_id, lead_id, journey, step.channel, now):
            return None, None  # the opt-out recorded marks the journey dirty: worked out anew
        return None

    def _suppressed(
        self, tenant_id: str, lead_id: str, journey: Journey, channel: Channel, now: datetime
    ) -> bool:
        """Record an opt-out when another lead of the same person closed this channel."""
        if self._suppression is None or journey.company is None:
            return False
        closed = self._suppression.closed(tenant_id, lead_id, journey.company)
        family = opt_out_scope_of(channel)
        scope = OptOutScope.ALL if OptOutScope.ALL in closed else family
        if scope is None or scope not in closed:
            return False
        command = OptOut(
            command_id=f"suppressed/{lead_id}/{scope}/{journey.version}",
            at=now,
            scope=scope,
            source=f"suppression: {closed[scope]}",
        )
        self._record(tenant_id, lead_id, command, "suppression not recorded")
        return True

    def _give_back(self, reservation: Reservation | None) -> None:
        if reservation is not None:
            self._guardian.release(reservation)

    def _template_problem(
        self, tenant_id: str, lead_id: str, step: SequenceStep, exc: TemplateError, now: datetime
    ) -> None:
        # The step cannot be rendered for this lead (a required value is missing): a person
        # must fill it in or decide; automation never sends a half-rendered message.
        _log.warning(
            "step cannot be rendered",
            extra={"lead_id": lead_id, "step": step.number, "problem": str(exc)},
        )
        command = RequestReview(
            command_id=f"template-problem/{lead_id}/{step.template_id}/{step.number}",
            at=now,
            reason=ReviewReason.MANUAL_FLAG,
            priority=Priority.MEDIUM,
        )
        self._record(tenant_id, lead_id, command, "review not opened")

    def _record(self, tenant_id: str, lead_id: str, command: AnyCommand, refused: str) -> None:
        """Run one command of the scheduler's own; a refusal is logged, not raised.

        A refusal means another writer got there first (the journey moved on): its next
        event marks it dirty again and it is worked out anew.
        """
        try:
            self._journeys.run(
                tenant_id, lead_id, [command], metadata=Metadata(actor=SCHEDULER_ACTOR)
            )
        except DomainError as exc:
            _log.info(refused, extra={"lead_id": lead_id, "code": exc.code})

    def _state(self, tenant_id: str, lead_id: str) -> Journey:
        key = (tenant_id, lead_id)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        state = self._journeys.load(tenant_id, lead_id)
        self.cache.put(key, state)
        return state


class _Pinned:
    """The guardian, asked about one phone even where the routing would ask about any."""

    def __init__(self, guardian: QuotaGuardian, phone_id: str) -> None:
        self._guardian = guardian
        self._phone_id = phone_id

    def reserve(
        self, tenant_id: str, *, phone_id: str | None, lead_id: str, cost: int, at: datetime
    ) -> Any:  # noqa: ANN401 - QuotaAnswer, as the guardian returns it
        del phone_id
        return self._guardian.reserve(
            tenant_id, phone_id=self._phone_id, lead_id=lead_id, cost=cost, at=at
        )

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 - delegate the rest
        return getattr(self._guardian, name)


def _refusal_text(decision: QuotaDecision | None) -> str:
    if decision is None:
        return "every phone is pacing"
    return f"quota: {decision.reason}" if decision.reason else "quota refused"


def _text(at: datetime | None) -> str | None:
    return None if at is None else iso(at)
