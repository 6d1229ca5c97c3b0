"""The journey read model: `gold_lead_journey` (one row per lead) and its communication log.

It runs INLINE, in the append's transaction, so it must cost a few row-level statements per
event and never a fold of the stream: each event is one UPDATE of the lead's row (plus, for
message events, one statement on `gold_communication_log`). What it needs of the past is in
the row itself.

EXACTLY ONCE PER STREAM, WITHOUT A CHECKPOINT. The row carries `stream_version`, and the
event at version v is applied only onto a row at v - 1 (`... WHERE stream_version = :previous`
in the same UPDATE that makes the change; for LeadEnrolled, an upsert whose update has the
same condition). A second application of the same event, or one out of order, changes
nothing. That is what lets `replay` rebuild this model while appends keep applying it
inline: whichever of the two comes second for an event finds the row moved on and leaves it.
Writes to the communication log happen only after the row accepted the event.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from cerniq_outreach.application.projections import communication_log as log
from cerniq_outreach.application.projections.base import iso, iso_or_none, personal
from cerniq_outreach.application.projections.search import search_key
from cerniq_outreach.domain.enums import (
    BounceKind,
    Channel,
    JourneyState,
    MessageStatus,
    OptOutScope,
)
from cerniq_outreach.domain.events import (
    Event,
    HumanReleasedControl,
    HumanTookControl,
    LeadEnrolled,
    MessageBounced,
    MessageCancelled,
    MessageClicked,
    MessageDelivered,
    MessageFailed,
    MessageOpened,
    MessageQueued,
    MessageRead,
    MessageSent,
    OptedOut,
    PhoneAssigned,
    ReplyReceived,
    ReviewRequested,
    ReviewResolved,
    SentimentScored,
    SequenceSnoozed,
    SequenceStarted,
    SequenceStopped,
    StateChanged,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cerniq_outreach.application.ports import SqlTx
    from cerniq_outreach.application.records import RecordedEvent

TABLE = "gold_lead_journey"

_ENROL = """
INSERT INTO gold_lead_journey (
    tenant_id, lead_id, company_name, fiscal_code, county, contact_name, phone, email,
    search_text, sequence_id, sequence_active, sequence_started_at, stream_version,
    enrolled_at, updated_at)
VALUES (:tenant, :lead, :company_name, :fiscal_code, :county, :contact_name, :phone, :email,
    :search_text, :sequence_id, TRUE, :at, :version, :at, :at)
ON CONFLICT (tenant_id, lead_id) DO UPDATE SET
    company_name = excluded.company_name, fiscal_code = excluded.fiscal_code,
    county = excluded.county, contact_name = excluded.contact_name, phone = excluded.phone,
    email = excluded.email, search_text = excluded.search_text,
    sequence_id = excluded.sequence_id, sequence_active = TRUE,
    sequence_started_at = excluded.sequence_started_at,
    stream_version = excluded.stream_version, enrolled_at = excluded.enrolled_at,
    updated_at = excluded.updated_at
WHERE gold_lead_journey.stream_version = excluded.stream_version - 1
"""


def _claim(assignments: str = "") -> str:
    """An UPDATE that applies the event only onto the version before it (module doc)."""
    extra = f", {assignments}" if assignments else ""
    return (
        f"UPDATE gold_lead_journey SET stream_version = :version, updated_at = :at{extra}"  # noqa: S608 - assignments are constants of this module
        " WHERE tenant_id = :tenant AND lead_id = :lead AND stream_version = :previous"
    )


_PLAIN = _claim()
_PHONE = _claim("assigned_phone_id = :phone_id, phone_assigned_at = :at")
_STEP = _claim("current_step = :step")
_SENT = _claim(
    "messages_sent = messages_sent + 1, last_contact_at = :at, last_channel = :channel,"
    " first_contact_at = COALESCE(first_contact_at, :at)"
)
_OPENED = _claim("open_count = open_count + 1")
_CLICKED = _claim("click_count = click_count + 1")
_INVALID = {
    Channel.WHATSAPP: _claim("whatsapp_invalid = TRUE"),
    Channel.EMAIL_COLD: _claim("email_invalid = TRUE"),
    Channel.EMAIL_WARM: _claim("email_invalid = TRUE"),
}
_REPLY = _claim("has_reply = TRUE, reply_count = reply_count + 1, last_reply_at = :at")
_SENTIMENT = _claim("sentiment_score = :score, sentiment_label = :label")
# A count, not the set of open ids: cheap, and `decide` never opens an id twice nor
# resolves one that is not open (the fold would ignore such a malformed resolution).
_REVIEW_OPENED = _claim("open_reviews = open_reviews + 1, needs_review = TRUE")
_REVIEW_RESOLVED = _claim(
    "open_reviews = CASE WHEN open_reviews > 0 THEN open_reviews - 1 ELSE 0 END,"
    " needs_review = open_reviews > 1"
)
_OPTED_OUT = {
    OptOutScope.WHATSAPP: _claim("opted_out_whatsapp = TRUE"),
    OptOutScope.EMAIL: _claim("opted_out_email = TRUE"),
    OptOutScope.ALL: _claim(
        "opted_out_whatsapp = TRUE, opted_out_email = TRUE, opted_out_all = TRUE"
    ),
}
_STAGE = "stage = :to_state, stage_changed_at = :at, stage_reason = :reason"
_PAUSED = _claim(f"{_STAGE}, paused_from = :from_state")
_RESUMED = _claim(f"{_STAGE}, paused_from = NULL")
_MOVED = _claim(_STAGE)
_SEQUENCE_STARTED = _claim(
    "sequence_id = :sequence_id, sequence_active = TRUE, sequence_started_at = :at,"
    " snoozed_until = NULL, current_step = NULL"
)
_SEQUENCE_STOPPED = _claim("sequence_active = FALSE, snoozed_until = NULL")
_SNOOZED = _claim("snoozed_until = :until")
_CONTROL = _claim("human_controlled_by = :user")

_SCRUB = """
UPDATE gold_lead_journey SET company_name = NULL, contact_name = NULL, phone = NULL,
    email = NULL, search_text = NULL
WHERE tenant_id = :tenant AND lead_id = :lead
"""


def scrub_lead(tx: SqlTx, tenant_id: str, lead_id: str) -> int:
    """Null a lead's personal columns (erasure): names, phone, email, reply previews.

    The rows keep their shape (stage, dates, counts): who was contacted when, not who they
    were. A replay after the lead's key is destroyed writes the same NULLs (`personal`).
    Returns the number of rows changed.
    """
    changed = tx.execute(_SCRUB, {"tenant": tenant_id, "lead": lead_id})
    return changed + log.scrub(tx, tenant_id, lead_id)


class JourneyProjection:
    """`gold_lead_journey` + `gold_communication_log`, applied inline (see module doc)."""

    name = "journey"
    tables: tuple[str, ...] = (TABLE, log.TABLE)
    keys: ClassVar[Mapping[str, tuple[str, ...]]] = MappingProxyType(
        {TABLE: ("tenant_id", "lead_id"), log.TABLE: log.KEY}
    )
    idempotent: ClassVar[bool] = True
    # Written by the scheduler (when the next step is due), not folded from events: a
    # rebuild leaves it empty until the scheduler works the journey out again, and
    # `replay --verify` does not compare it.
    foreign_columns: ClassVar[Mapping[str, tuple[str, ...]]] = MappingProxyType(
        {TABLE: ("next_action_at",)}
    )

    def apply(self, tx: SqlTx, record: RecordedEvent) -> None:
        """Fold one event into the lead's row (and its messages), if it is the next one."""
        event = record.event
        if not isinstance(event, Event):
            return  # a phone's event: its stream is no lead's journey
        params: dict[str, Any] = {
            "tenant": record.tenant_id,
            "lead": record.stream_id,
            "version": record.stream_version,
            "previous": record.stream_version - 1,
            "at": iso(record.occurred_at),
        }
        if isinstance(event, LeadEnrolled):
            _enrol(tx, event, params)
            return
        if isinstance(event, MessageBounced | MessageFailed):
            # Which address died depends on the message's channel: read it first.
            _address_lost(tx, record, event, params)
            return
        sql, extra = _statement(event)
        if tx.execute(sql, {**params, **extra}) == 0:
            return  # applied already, or the row is not at the previous version: no-op
        _log_message(tx, record)


def _enrol(tx: SqlTx, event: LeadEnrolled, params: dict[str, Any]) -> None:
    company = event.company
    name, contact = personal(company.name), personal(company.contact_name)
    phone, email = personal(company.phone), personal(company.email)
    tx.execute(
        _ENROL,
        {
            **params,
            "company_name": name,
            "fiscal_code": company.fiscal_code,
            "county": company.county,
            "contact_name": contact,
            "phone": phone,
            "email": email,
            "search_text": search_key(name, contact, email, phone),
            "sequence_id": event.sequence_id,
        },
    )


def _address_lost(
    tx: SqlTx,
    record: RecordedEvent,
    event: MessageBounced | MessageFailed,
    params: dict[str, Any],
) -> None:
    final = event.kind is BounceKind.HARD if isinstance(event, MessageBounced) else event.permanent
    channel = log.channel_of(tx, record, event.message_id) if final else None
    sql = _INVALID.get(channel, _PLAIN) if channel is not None else _PLAIN
    if tx.execute(sql, params) == 0:
        return
    if isinstance(event, MessageBounced):
        log.bounced(tx, record, event)
    else:
        log.failed(tx, record, event)


def _statement(event: object) -> tuple[str, dict[str, Any]]:  # noqa: C901, PLR0911, PLR0912 - one arm per event type
    """The row UPDATE for an event and its own parameters."""
    match event:
        case PhoneAssigned():
            return _PHONE, {"phone_id": event.phone_id}
        case MessageQueued(step=int(step)):
            return _STEP, {"step": step}
        case MessageSent():
            return _SENT, {"channel": event.channel.value}
        case MessageOpened():
            return _OPENED, {}
        case MessageClicked():
            return _CLICKED, {}
        case ReplyReceived():
            return _REPLY, {}
        case SentimentScored():
            return _SENTIMENT, {"score": event.score, "label": event.label.value}
        case ReviewRequested():
            return _REVIEW_OPENED, {}
        case ReviewResolved():
            return _REVIEW_RESOLVED, {}
        case OptedOut():
            return _OPTED_OUT[event.channel], {}
        case StateChanged():
            return _stage(event)
        case SequenceStarted():
            return _SEQUENCE_STARTED, {"sequence_id": event.sequence_id}
        case SequenceStopped():
            return _SEQUENCE_STOPPED, {}
        case SequenceSnoozed():
            return _SNOOZED, {"until": iso_or_none(event.until)}
        case HumanTookControl():
            return _CONTROL, {"user": event.user}
        case HumanReleasedControl():
            return _CONTROL, {"user": None}
        case _:
            # Events that change nothing on the row (delivered, read, cancelled, a queued
            # manual message, types added later) still move its version.
            return _PLAIN, {}


def _stage(event: StateChanged) -> tuple[str, dict[str, Any]]:
    """The fold's pause memory: PAUSED remembers where from; leaving PAUSED forgets it."""
    params = {"to_state": event.to_state.value, "reason": event.reason}
    if event.to_state is JourneyState.PAUSED:
        return _PAUSED, {**params, "from_state": event.from_state.value}
    if event.from_state is JourneyState.PAUSED:
        return _RESUMED, params
    return _MOVED, params


def _log_message(tx: SqlTx, record: RecordedEvent) -> None:
    """The communication-log side of an event the row has just accepted."""
    event = record.event
    match event:
        case MessageQueued():
            log.queued(tx, record, event)
        case MessageSent():
            log.sent(tx, record, event)
        case MessageDelivered():
            log.fact(tx, record, event.message_id, MessageStatus.DELIVERED)
        case MessageRead():
            log.fact(tx, record, event.message_id, MessageStatus.READ)
        case MessageOpened():
            log.fact(tx, record, event.message_id, MessageStatus.OPENED)
        case MessageClicked():
            log.fact(tx, record, event.message_id, MessageStatus.CLICKED)
        case MessageCancelled():
            log.cancelled(tx, record, event)
        case ReplyReceived():
            log.reply(tx, record, event)
        case _:
            pass
