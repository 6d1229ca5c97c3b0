"""The send workers: one queued message to its provider, recorded once, whatever crashes.

A send job carries ids only (tenant, lead, message). The worker reads the journey and:

1. does nothing when the message was sent, cancelled or failed for good (a redelivered job);
2. cancels it when a rule closed the way since it was queued (opt-out, pause, review, a
   human took over, a dead address), giving back its WhatsApp reservation;
3. waits (`RetryLater`) outside business hours, while the phone is not ACTIVE, or past
   the day's quota, asking the guardian again at send time (idempotent per lead and day:
   a message queued yesterday counts on the day it is really sent);
4. records `SendAttempted` at the version it read — two workers holding the same job
   conflict there and one of them steps back — then calls the provider, and records
   `MessageSent` (or `MessageFailed`);
5. after an attempt that left no result (the worker died, or a timeout after the request
   left), asks the provider whether the message went out before sending it again:
   Resend by its idempotency key, Instantly by skipping leads already in the campaign,
   TimelinesAI (no idempotency key) by looking for the text in the chat's history.

An attempt younger than `SendSettings.attempt_lease` belongs to a worker that may still
be running: the job waits for the lease to run out rather than race it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import msgspec

from cerniq_outreach.application.channels import (
    ColdLead,
    InvalidRecipient,
    RateLimited,
    RequestRejected,
    SendResult,
    WarmEmail,
)
from cerniq_outreach.application.jobs import NonRetryable, RetryLater, read_payload
from cerniq_outreach.application.records import Metadata
from cerniq_outreach.domain.commands import AttemptSend, CancelMessage, RecordFailure, RecordSent
from cerniq_outreach.domain.enums import Channel, PhoneStatus, QuotaRefusal
from cerniq_outreach.domain.errors import DomainError
from cerniq_outreach.domain.outbound import outbound_refusal
from cerniq_outreach.domain.quota_ledger import DEFAULT_POLICY, QuotaPolicy, Reservation

if TYPE_CHECKING:
    from collections.abc import Callable

    from cerniq_outreach.application.catalog import Catalog
    from cerniq_outreach.application.channels import (
        ColdEmailChannel,
        WarmEmailChannel,
        WhatsAppChannel,
    )
    from cerniq_outreach.application.jobs import JobPayload
    from cerniq_outreach.application.journeys import JourneyCommands, Outcome
    from cerniq_outreach.application.metrics import Counters
    from cerniq_outreach.application.phone_directory import PhoneDirectory
    from cerniq_outreach.application.ports import Clock, QuotaGuardian
    from cerniq_outreach.domain.events import Company
    from cerniq_outreach.domain.journey import Journey, MessageRecord
    from cerniq_outreach.domain.templates import RenderedMessage

_log = logging.getLogger(__name__)

SENT_COUNTER: Final = "cerniq_messages_sent_total"
"""Messages the providers accepted, labelled channel."""
SENDER_ACTOR: Final = "worker:send"

MESSAGE_ID_VARIABLE: Final = "cerniq_message_id"
LEAD_ID_VARIABLE: Final = "cerniq_lead_id"
TENANT_ID_VARIABLE: Final = "cerniq_tenant_id"
"""Instantly custom variables: they come back in every webhook about the lead."""


class SendSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How long an attempt is presumed alive, and when to look again after a refusal."""

    attempt_lease: timedelta = timedelta(seconds=90)
    refused_retry: timedelta = timedelta(minutes=15)


class SendJob(msgspec.Struct, frozen=True, kw_only=True):
    """The payload of a send job: ids only."""

    tenant_id: str
    lead_id: str
    message_id: str


class Sender:
    """The handler of the three send jobs (`SEND_WHATSAPP`, `SEND_COLD_EMAIL`, `SEND_WARM_EMAIL`).

    Args:
        journeys: reads and writes journeys.
        catalog: renders the message again from the version it was queued with.
        whatsapp, cold_email, warm_email: the channels (live or sandbox).
        phones: the pool's read model (a phone id's number).
        guardian: asked again at send time for WhatsApp.
        clock: the time of every decision.
        counters: where sends are counted.
        policy_for: each tenant's business hours (and ramp).
    """

    def __init__(
        self,
        *,
        journeys: JourneyCommands,
        catalog: Catalog,
        whatsapp: WhatsAppChannel,
        cold_email: ColdEmailChannel,
        warm_email: WarmEmailChannel,
        phones: PhoneDirectory,
        guardian: QuotaGuardian,
        clock: Clock,
        counters: Counters,
        policy_for: Callable[[str], QuotaPolicy] = lambda _t: DEFAULT_POLICY,
        settings: SendSettings | None = None,
    ) -> None:
        self._journeys = journeys
        self._catalog = catalog
        self._whatsapp = whatsapp
        self._cold = cold_email
        self._warm = warm_email
        self._phones = phones
        self._guardian = guardian
        self._clock = clock
        self._counters = counters
        self._policy_for = policy_for
        self._settings = settings or SendSettings()

    def handle(self, payload: JobPayload) -> None:
        """Run one send job (see the module doc); idempotent."""
        job = read_payload(payload, SendJob)
        journey = self._journeys.load(job.tenant_id, job.lead_id)
        record = journey.messages.get(job.message_id)
        if record is None:
            raise NonRetryable(f"message {job.message_id} is not queued on lead {job.lead_id}")
        if record.sent_at is not None or not record.pending:
            return  # sent, cancelled or failed for good: a redelivered job
        now = self._clock.now()
        refusal = outbound_refusal(journey, record.channel, automated=record.automated)
        if refusal is not None:
            self._cancel(job, record, refusal, now)
            return
        self._wait_for_window(job, record, now)
        rendered = self._render(job, journey, record)
        if record.attempts and record.attempted_at is not None:
            lease_end = record.attempted_at + self._settings.attempt_lease
            if lease_end > now:
                raise RetryLater(lease_end, "another attempt may still be running")
            found = self._find_earlier_send(job, journey, record, rendered)
            if found is not None:
                # Sent by the earlier attempt, inside the window it was allowed in.
                self._record_sent(job, found, record.attempted_at)
                return
        claimed = self._claim(job, journey, record, now)
        if claimed is None:
            raise RetryLater(now + self._settings.attempt_lease, "another worker took the message")
        self._send(job, claimed, record, rendered, now)

    # --- the steps ---------------------------------------------------------------------------

    def _wait_for_window(self, job: SendJob, record: MessageRecord, now: datetime) -> None:
        """Raise `RetryLater` unless the message may go out now (hours, phone, quota)."""
        if record.channel is Channel.WHATSAPP:
            answer = self._guardian.reserve(
                job.tenant_id,
                phone_id=record.phone_id,
                lead_id=job.lead_id,
                cost=record.quota_cost,
                at=now,
            )
            decision = answer.decision
            if decision.allowed:
                return
            if decision.reason is QuotaRefusal.PHONE_NOT_ACTIVE and self._banned(job, record):
                self._cancel(job, record, f"phone {record.phone_id} is BANNED", now)
                raise NonRetryable("the sending phone is banned: the step is cancelled")
            retry = decision.retry_at or now + self._settings.refused_retry
            raise RetryLater(retry, f"WhatsApp refused: {decision.reason}")
        if record.automated and self._respects_hours(record):
            hours = self._policy_for(job.tenant_id).hours
            if not hours.is_open(now):
                raise RetryLater(hours.next_open(now), "outside business hours")

    def _respects_hours(self, record: MessageRecord) -> bool:
        if record.sequence_id is None or not self._catalog.has_sequence(record.sequence_id):
            return True
        return self._catalog.sequence(record.sequence_id).respect_business_hours

    def _banned(self, job: SendJob, record: MessageRecord) -> bool:
        if record.phone_id is None:
            return False
        phone = self._phones.phone(job.tenant_id, record.phone_id)
        return phone is not None and phone.status is PhoneStatus.BANNED

    def _render(self, job: SendJob, journey: Journey, record: MessageRecord) -> RenderedMessage:
        if record.template_id is None or record.template_version is None:
            raise NonRetryable(f"message {job.message_id} has no template to render")
        assert journey.company is not None  # noqa: S101 - enrolled journeys have one
        version = self._catalog.version(record.template_id, record.template_version)
        rendered = self._catalog.render_version(
            version,
            tenant_id=job.tenant_id,
            lead_id=job.lead_id,
            company=journey.company,
            step=record.step,
        )
        if record.content_hash is not None and rendered.content_hash != record.content_hash:
            # Versions are immutable: the catalogue was edited in place. Sending other text
            # than was queued (and audited) is not allowed.
            raise NonRetryable(
                f"template {record.template_id} v{record.template_version} no longer renders"
                " the text that was queued (versions must not be edited; add a new one)"
            )
        return rendered

    def _claim(
        self, job: SendJob, journey: Journey, record: MessageRecord, now: datetime
    ) -> Journey | None:
        """Record the attempt at the version read.

        Returns the state after it, or None when another worker came first.
        """
        seen = record.attempts

        def attempt(state: Journey) -> list[AttemptSend]:
            current = state.messages.get(job.message_id)
            if current is None or current.attempts != seen or not current.pending:
                return []
            return [
                AttemptSend(
                    command_id=f"attempt/{job.message_id}/{seen + 1}",
                    at=now,
                    message_id=job.message_id,
                )
            ]

        try:
            outcome = self._run(job, attempt, state=journey)
        except DomainError as exc:
            raise NonRetryable(f"message {job.message_id} may not be sent: {exc}") from exc
        return outcome.state if outcome.appended else None

    def _send(
        self,
        job: SendJob,
        journey: Journey,
        record: MessageRecord,
        rendered: RenderedMessage,
        at: datetime,
    ) -> None:
        """Call the provider and record the outcome; `at` is when the send was allowed."""
        try:
            result = self._call_provider(job, journey, record, rendered)
        except InvalidRecipient as exc:
            self._fail(job, record, exc.detail, permanent=True)
            return
        except RequestRejected as exc:
            self._fail(job, record, exc.detail, permanent=False)
            raise NonRetryable(f"{exc.provider} refused the request: {exc.detail}") from exc
        except RateLimited as exc:
            raise RetryLater(exc.retry_at, f"{exc.provider} rate limit") from exc
        if result is None:
            return  # the provider refused the address (recorded as a failure)
        self._record_sent(job, result, at, state=journey)
        self._counters.inc(SENT_COUNTER, channel=record.channel.value)

    def _call_provider(
        self, job: SendJob, journey: Journey, record: MessageRecord, rendered: RenderedMessage
    ) -> SendResult | None:
        company = journey.company
        assert company is not None  # noqa: S101 - enrolled journeys have one
        if record.channel is Channel.WHATSAPP:
            from_phone = self._sending_number(job, record)
            if not company.phone:
                raise NonRetryable("the lead has no phone")
            return self._whatsapp.send_to_phone(
                from_phone=from_phone, to_phone=company.phone, text=rendered.text
            )
        if not company.email:
            raise NonRetryable("the lead has no email address")
        if record.channel is Channel.EMAIL_COLD:
            return self._hand_to_campaign(job, record, company, rendered)
        sender = self._catalog.sender
        return self._warm.send(
            WarmEmail(
                tenant_id=job.tenant_id,
                lead_id=job.lead_id,
                message_id=job.message_id,
                sender=f"{sender.name} <{sender.email}>",
                to=company.email,
                subject=rendered.subject or "",
                text=rendered.text,
                reply_to=sender.reply_to,
                unsubscribe_url=self._catalog.unsubscribe_url(job.tenant_id, job.lead_id),
            )
        )

    def _hand_to_campaign(
        self, job: SendJob, record: MessageRecord, company: Company, rendered: RenderedMessage
    ) -> SendResult | None:
        email = company.email or ""
        campaign = self._campaign_of(record)
        first, _, last = (company.contact_name or "").partition(" ")
        lead = ColdLead(
            email=email,
            first_name=first or None,
            last_name=last or None,
            company_name=company.name,
            phone=company.phone,
            personalization=rendered.text,
            custom_variables={
                TENANT_ID_VARIABLE: job.tenant_id,
                LEAD_ID_VARIABLE: job.lead_id,
                MESSAGE_ID_VARIABLE: job.message_id,
                "subject": rendered.subject,
            },
        )
        added = self._cold.add_leads(campaign, [lead])
        # Already in the campaign (a duplicate; or, after an earlier attempt of ours, the
        # skip Instantly reports for `skip_if_in_campaign`): the lead was handed over.
        handed = added.uploaded or added.duplicates or (added.skipped and record.attempts > 0)
        if handed:
            return SendResult(provider="instantly", external_id=f"{campaign}:{email}")
        reason = "in the block list" if added.in_blocklist else "skipped by the campaign"
        self._fail(job, record, f"Instantly did not take the address: {reason}", permanent=True)
        return None

    def _campaign_of(self, record: MessageRecord) -> str:
        if record.sequence_id is not None and self._catalog.has_sequence(record.sequence_id):
            for step in self._catalog.sequence(record.sequence_id).steps:
                if step.number == record.step and step.campaign_id:
                    return step.campaign_id
        raise NonRetryable("a cold email needs the campaign its sequence step names")

    def _sending_number(self, job: SendJob, record: MessageRecord) -> str:
        phone = (
            None if record.phone_id is None else self._phones.phone(job.tenant_id, record.phone_id)
        )
        if phone is None:
            raise NonRetryable(f"phone {record.phone_id} is not in the pool")
        return phone.number

    def _find_earlier_send(
        self, job: SendJob, journey: Journey, record: MessageRecord, rendered: RenderedMessage
    ) -> SendResult | None:
        """Whether an earlier attempt reached the provider (see the module doc)."""
        company = journey.company
        if record.channel is Channel.WHATSAPP and company is not None and company.phone:
            return self._whatsapp.find_sent(
                from_phone=self._sending_number(job, record),
                to_phone=company.phone,
                text=rendered.text,
            )
        # Email: sending again is safe (idempotency key; campaigns skip leads already in).
        return None

    # --- recording ---------------------------------------------------------------------------

    def _record_sent(
        self, job: SendJob, result: SendResult, at: datetime, *, state: Journey | None = None
    ) -> None:
        """Record the provider's acceptance, dated when the send began (the window's time)."""
        command = RecordSent(
            command_id=f"sent/{job.message_id}",
            at=at,
            message_id=job.message_id,
            provider=result.provider,
            external_id=result.external_id,
        )
        try:
            self._run(job, lambda _s: [command], state=state)
        except DomainError:
            # The provider took the message but a rule closed the way meanwhile (an opt-out
            # that arrived during the call): the send happened and cannot be undone. Say so
            # loudly; the attempt stays on record for the audit.
            _log.exception(
                "the provider accepted a message the journey no longer allows",
                extra={"lead_id": job.lead_id, "message_id": job.message_id},
            )
            raise

    def _fail(self, job: SendJob, record: MessageRecord, reason: str, *, permanent: bool) -> None:
        command = RecordFailure(
            command_id=f"failed/{job.message_id}/{record.attempts + 1}",
            at=self._clock.now(),
            message_id=job.message_id,
            reason=reason,
            permanent=permanent,
        )
        self._run(job, lambda _s: [command])
        if permanent:
            self._release(job, record)

    def _cancel(self, job: SendJob, record: MessageRecord, reason: str, now: datetime) -> None:
        command = CancelMessage(
            command_id=f"cancel/{job.message_id}", at=now, message_id=job.message_id, reason=reason
        )
        self._run(job, lambda _s: [command])
        self._release(job, record)

    def _release(self, job: SendJob, record: MessageRecord) -> None:
        """Give back a new conversation that never reached the provider."""
        if record.channel is not Channel.WHATSAPP or record.quota_cost == 0 or not record.phone_id:
            return
        day = self._policy_for(job.tenant_id).hours.local_date(record.queued_at)
        self._guardian.release(
            Reservation(
                tenant_id=job.tenant_id, phone_id=record.phone_id, lead_id=job.lead_id, day=day
            )
        )

    def _run(
        self,
        job: SendJob,
        commands: Callable[[Journey], list[Any]],
        *,
        state: Journey | None = None,
    ) -> Outcome:
        return self._journeys.run(
            job.tenant_id,
            job.lead_id,
            commands,
            metadata=Metadata(actor=SENDER_ACTOR, causation_id=job.message_id),
            state=state,
        )
