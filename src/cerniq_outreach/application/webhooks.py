"""Webhook intake and processing: verified events in, journey events out, each once.

The HTTP layer verifies the signature, then hands the raw body to `WebhookIntake.accept`,
which reads it (`webhook_events.interpret`), records the event identity in the inbox and,
the first time only, enqueues a `WEBHOOK_JOB`. The request is answered at once; the job runs
`WebhookProcessor.handle`, which finds the lead, decides on its journey and appends.

Twice-delivered events are stopped twice: by the inbox before anything is enqueued, and by
the event ids (derived from the provider's identity) should the inbox ever be bypassed or
lost. An event whose lead or message cannot be found is logged and counted, never retried
into an error loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Final, Protocol

import msgspec

from cerniq_outreach.application.channels import RequestRejected
from cerniq_outreach.application.jobs import PROCESS_WEBHOOK, read_payload
from cerniq_outreach.application.records import ConcurrencyConflict, Metadata
from cerniq_outreach.application.webhook_commands import commands_for
from cerniq_outreach.application.webhook_events import (
    MESSAGE_FACTS,
    Ignored,
    LeadRef,
    Locator,
    Provider,
    WebhookFact,
    interpret,
)
from cerniq_outreach.domain.decide import decide
from cerniq_outreach.domain.decision import derive_id
from cerniq_outreach.domain.errors import DomainError, NotEnrolled, UnknownMessage
from cerniq_outreach.domain.events import Event
from cerniq_outreach.domain.journey import evolve, replay

if TYPE_CHECKING:
    from cerniq_outreach.application.channels import WhatsAppChannel
    from cerniq_outreach.application.jobs import JobPayload, JobQueue
    from cerniq_outreach.application.metrics import Counters
    from cerniq_outreach.application.ports import Clock, EventStore
    from cerniq_outreach.domain.commands import AnyCommand
    from cerniq_outreach.domain.journey import Journey

WEBHOOK_JOB: Final = PROCESS_WEBHOOK
"""The job name the intake enqueues and the worker registers `WebhookProcessor.handle` for."""

EVENTS_COUNTER: Final = "cerniq_webhook_events_total"
"""Intake outcomes, labelled provider and outcome (accepted, duplicate, ignored, malformed)."""
REJECTED_COUNTER: Final = "cerniq_webhook_rejected_total"
"""Requests refused before reading (bad signature or secret), labelled provider and reason."""
PROCESSED_COUNTER: Final = "cerniq_webhook_processed_total"
"""Background outcomes, labelled provider and outcome (see `ProcessOutcome`)."""

_log = logging.getLogger(__name__)


class WebhookInbox(Protocol):
    """The event identities received so far: the first delivery of each wins.

    Adapters: in-memory, and SQL (SQLite and PostgreSQL, table `webhook_inbox`).
    """

    def record_once(
        self, tenant_id: str | None, provider: str, identity: str, received_at: datetime
    ) -> bool:
        """Record the identity; True the first time, False for every later delivery."""
        ...

    def forget(self, provider: str, identity: str) -> None:
        """Undo `record_once` (the job could not be enqueued: the provider must retry)."""
        ...


class LeadLookup(Protocol):
    """Finds the journey (and the message) a provider event belongs to, across tenants."""

    def find(self, locator: Locator, *, needs_message: bool) -> LeadRef | None:
        """The lead, or None when it is unknown or ambiguous.

        With `needs_message`, also the message the event is about: the one `locator` names,
        else the one whose provider id is `external_id`, else the lead's latest sent message
        on the locator's channel.
        """
        ...


class IntakeOutcome(StrEnum):
    """What the intake did with a verified request (every one is answered 2xx)."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"


class WebhookIntake:
    """Reads a verified body, records its identity once, and enqueues its processing."""

    def __init__(
        self, inbox: WebhookInbox, queue: JobQueue, clock: Clock, counters: Counters
    ) -> None:
        self._inbox = inbox
        self._queue = queue
        self._clock = clock
        self._counters = counters

    def accept(
        self, provider: Provider, body: bytes, *, event_id: str | None = None
    ) -> IntakeOutcome:
        """`read` then `record`: take one verified event (raises `ShapeError` on a bad body)."""
        read = self.read(provider, body, event_id=event_id)
        return IntakeOutcome.IGNORED if isinstance(read, Ignored) else self.record(read)

    def read(
        self, provider: Provider, body: bytes, *, event_id: str | None = None
    ) -> WebhookFact | Ignored:
        """Read the body (CPU only, no I/O); raises `ShapeError`, nothing recorded."""
        try:
            read = interpret(provider, body, event_id=event_id)
        except ValueError:
            self._count(provider, "malformed")
            raise
        if isinstance(read, Ignored):
            self._count(provider, IntakeOutcome.IGNORED)
        return read

    def record(self, fact: WebhookFact) -> IntakeOutcome:
        """Record the identity and, the first time only, enqueue the processing (blocking I/O)."""
        provider = fact.provider
        now = self._clock.now()
        if not self._inbox.record_once(fact.locator.tenant_id, provider, fact.identity, now):
            self._count(provider, IntakeOutcome.DUPLICATE)
            return IntakeOutcome.DUPLICATE
        payload = {"fact": msgspec.to_builtins(fact), "received_at": now.isoformat()}
        try:
            self._queue.enqueue(WEBHOOK_JOB, payload)
        except Exception:
            # Not enqueued means not processed: forget it, so the provider's retry gets in.
            self._inbox.forget(provider, fact.identity)
            raise
        self._count(provider, IntakeOutcome.ACCEPTED)
        return IntakeOutcome.ACCEPTED

    def _count(self, provider: Provider, outcome: str) -> None:
        self._counters.inc(EVENTS_COUNTER, provider=provider.value, outcome=outcome)


class ProcessOutcome(StrEnum):
    """What processing one event did to its journey."""

    RECORDED = "recorded"
    NOTHING_NEW = "nothing_new"  # a redelivery, or a fact the journey already knows
    UNKNOWN_LEAD = "unknown_lead"
    UNKNOWN_MESSAGE = "unknown_message"
    REFUSED = "refused"  # the journey's rules refused it (logged with the rule's code)
    UNCONFIRMED = "unconfirmed"  # the provider does not know the inbound message it reported


InboundConfirmation = Callable[[WebhookFact], bool]
"""Asks the provider whether an inbound message it reported is real (see `confirm_with`)."""


def confirm_with(whatsapp: WhatsAppChannel) -> InboundConfirmation:
    """Confirmation of TimelinesAI inbound messages by `GET /messages/{uid}` (live mode).

    TimelinesAI signs nothing: a shared secret guards the route, and anyone holding it
    could write replies, opt-outs and complaints into journeys. So before an inbound
    message changes a journey, the provider is asked for it: it must exist, be received
    (not ours) and carry the text reported. Other providers' events pass (Resend's are
    signed; Instantly offers no such read). A provider error other than "no such message"
    propagates, so the job fails rather than the event being trusted.
    """

    def confirm(fact: WebhookFact) -> bool:
        if fact.provider is not Provider.TIMELINESAI or fact.reply_id is None:
            return True
        try:
            message = whatsapp.message(fact.reply_id)
        except RequestRejected:  # 404: the provider never saw such a message
            return False
        return not message.from_me and (message.text or "") == fact.text

    return confirm


class _Payload(msgspec.Struct, frozen=True):
    fact: WebhookFact
    received_at: datetime


class WebhookProcessor:
    """The background half: one provider event becomes journey events, appended once.

    Args:
        store: the event log (as the application role: it appends for one tenant).
        lookup: finds leads across tenants (on PostgreSQL a follower-role read model).
        counters: where outcomes are counted.
        max_attempts: appends tried when concurrent writers keep moving the stream.
        confirm: asks the provider about inbound messages before they change a journey
            (live TimelinesAI: `confirm_with`); None trusts the verified webhook (sandbox).
    """

    def __init__(
        self,
        store: EventStore,
        lookup: LeadLookup,
        counters: Counters,
        *,
        max_attempts: int = 8,
        confirm: InboundConfirmation | None = None,
    ) -> None:
        self._confirm = confirm
        self._store = store
        self._lookup = lookup
        self._counters = counters
        self._max_attempts = max_attempts

    def handle(self, payload: JobPayload) -> None:
        """The `WEBHOOK_JOB` handler: decode the payload the intake enqueued, process it."""
        job = read_payload(payload, _Payload)
        self.process(job.fact, job.received_at)

    def process(self, fact: WebhookFact, received_at: datetime) -> ProcessOutcome:
        """Apply one event to its journey; `received_at` is the command's time."""
        outcome = self._process(fact, received_at)
        self._counters.inc(PROCESSED_COUNTER, provider=fact.provider.value, outcome=outcome)
        return outcome

    def _process(self, fact: WebhookFact, at: datetime) -> ProcessOutcome:
        if self._confirm is not None and not self._confirm(fact):
            _log.warning(
                "webhook names an inbound message its provider does not know",
                extra={"provider": fact.provider, "identity": fact.identity},
            )
            return ProcessOutcome.UNCONFIRMED
        lead = self._lookup.find(fact.locator, needs_message=fact.fact in MESSAGE_FACTS)
        if lead is None:
            _log.warning(
                "webhook for an unknown lead",
                extra={"provider": fact.provider, "identity": fact.identity, "fact": fact.fact},
            )
            return ProcessOutcome.UNKNOWN_LEAD
        try:
            commands = commands_for(fact, lead, at)
        except UnknownMessage:
            _log.warning(
                "webhook for an unknown message",
                extra={
                    "provider": fact.provider,
                    "identity": fact.identity,
                    "lead_id": lead.lead_id,
                },
            )
            return ProcessOutcome.UNKNOWN_MESSAGE
        return self._apply(fact, lead, commands)

    def _apply(
        self, fact: WebhookFact, lead: LeadRef, commands: list[AnyCommand]
    ) -> ProcessOutcome:
        metadata = Metadata(causation_id=fact.command_id, actor=f"webhook:{fact.provider}")
        conflict: ConcurrencyConflict | None = None
        for _ in range(self._max_attempts):
            recorded = self._store.read_stream(lead.tenant_id, lead.lead_id)
            stored_ids = {r.event_id for r in recorded}
            # A command whose first event is in the stream ran before (a redelivery that got
            # past the inbox): deciding it again on newer state could differ, so skip it.
            pending = [c for c in commands if derive_id(c.command_id, 0) not in stored_ids]
            if not pending:
                return ProcessOutcome.NOTHING_NEW
            try:
                events = _decide_all(
                    replay(r.event for r in recorded if isinstance(r.event, Event)), pending
                )
            except (NotEnrolled, UnknownMessage) as exc:
                _log.warning(
                    "webhook names nothing of this journey",
                    extra={"provider": fact.provider, "lead_id": lead.lead_id, "code": exc.code},
                )
                if isinstance(exc, NotEnrolled):
                    return ProcessOutcome.UNKNOWN_LEAD
                return ProcessOutcome.UNKNOWN_MESSAGE
            except DomainError as exc:
                _log.warning(
                    "journey refused a webhook event",
                    extra={"provider": fact.provider, "lead_id": lead.lead_id, "code": exc.code},
                )
                return ProcessOutcome.REFUSED
            if not events:
                return ProcessOutcome.NOTHING_NEW
            version = recorded[-1].stream_version if recorded else 0
            try:
                result = self._store.append(
                    lead.tenant_id,
                    lead.lead_id,
                    events,
                    expected_version=version,
                    metadata=metadata,
                )
            except ConcurrencyConflict as exc:
                conflict = exc  # another writer moved the journey: decide again on fresh state
                continue
            return ProcessOutcome.RECORDED if result.appended else ProcessOutcome.NOTHING_NEW
        assert conflict is not None  # noqa: S101 - the loop ran at least once
        raise conflict  # the job fails and the queue retries it later


def _decide_all(state: Journey, commands: list[AnyCommand]) -> list[Event]:
    """Decide each command on the state the previous ones left (a complaint has two)."""
    events: list[Event] = []
    for command in commands:
        decided = decide(state, command)
        for event in decided:
            state = evolve(state, event)
        events.extend(decided)
    return events
