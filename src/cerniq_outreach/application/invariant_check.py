"""Audit an `events export` against the invariants of domain.md, from the export alone.

`cerniq-outreach events export` writes the log one JSON object a line, in global order
(`ExportRow`). The auditor reads those rows in one pass, keeping per stream only the few
facts the rules are stated in, and reports every event that breaks a rule as a `Violation`
under a stable rule code (`Rule`, described in `RULES`). Memory grows with the streams and
their messages, not with the other events, so a large export is read as it streams by.

Like tests/property/journey_oracle.py, this is a second reading of domain.md, not a replay
of `decide`: it shares with the engine only what *is* the rule (the transition table, the
opt-out scopes, business hours, the warm-up ramp), so a bug in a decision cannot hide itself.

What an export cannot show is not checked: invariant 1 (a replay gives one state) is about
the code, and invariant 6's provider event ids are not in the log (a reply's external id and
each message's provider facts stand in for them, see DUPLICATE_PROVIDER_EVENT). A phone's
status is not checked either: a health check may pause a phone between the guardian's answer
and the append of the message, a race the engine allows (the sender asks again).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Final
from zoneinfo import ZoneInfo

import msgspec

from cerniq_outreach.domain.enums import (
    Channel,
    JourneyState,
    OptOutScope,
    PhoneStatus,
    ReplyTrigger,
    opt_out_scope_of,
)
from cerniq_outreach.domain.events import (
    EVENT_CLASSES,
    PHONE_STREAM_PREFIX,
    BaseEvent,
    Event,
    HumanReleasedControl,
    HumanTookControl,
    LeadEnrolled,
    MessageBounced,
    MessageClicked,
    MessageDelivered,
    MessageOpened,
    MessageQueued,
    MessageRead,
    MessageSent,
    OptedOut,
    PhoneAssigned,
    PhoneEvent,
    PhoneRegistered,
    PhoneSettingsChanged,
    PhoneStatusChanged,
    ReplyReceived,
    ReviewRequested,
    ReviewResolved,
    SentimentScored,
    SequenceSnoozed,
    SequenceStarted,
    SequenceStopped,
    StateChanged,
)
from cerniq_outreach.domain.quota import DEFAULT_RAMP, PhoneQuotaView, WarmupRamp, effective_limit
from cerniq_outreach.domain.transitions import targets_from

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from cerniq_outreach.domain.business_hours import BusinessHours

S = JourneyState
_BLOCKING_STAGES: Final = frozenset({S.PAUSED, S.CONVERTED, S.DEAD})
_REVIEW_TRIGGERS: Final = frozenset({ReplyTrigger.COMPLAINT.value, ReplyTrigger.OPT_OUT.value})
_SENTIMENT: Final = str(SentimentScored.__struct_config__.tag)
_PROVIDER_FACTS: Final = (MessageDelivered, MessageRead, MessageOpened, MessageClicked)


class Rule(StrEnum):
    """The stable code of each rule the auditor checks; `RULES` says what each one means."""

    PHONE_DAILY_LIMIT = "PHONE_DAILY_LIMIT"
    UNKNOWN_PHONE = "UNKNOWN_PHONE"
    STICKY_PHONE = "STICKY_PHONE"
    BUSINESS_HOURS = "BUSINESS_HOURS"
    QUEUED_OUTSIDE_HOURS = "QUEUED_OUTSIDE_HOURS"
    AFTER_OPT_OUT = "AFTER_OPT_OUT"
    AFTER_REPLY = "AFTER_REPLY"
    AUTOMATION_BLOCKED = "AUTOMATION_BLOCKED"
    DEAD_JOURNEY = "DEAD_JOURNEY"
    SEQUENCE_NOT_RUNNING = "SEQUENCE_NOT_RUNNING"
    ONE_SEND_PER_MESSAGE = "ONE_SEND_PER_MESSAGE"
    ONE_QUEUE_PER_MESSAGE = "ONE_QUEUE_PER_MESSAGE"
    ONE_QUEUE_PER_STEP = "ONE_QUEUE_PER_STEP"
    LEGAL_TRANSITIONS = "LEGAL_TRANSITIONS"
    STREAM_ORDER = "STREAM_ORDER"
    STREAM_START = "STREAM_START"
    DUPLICATE_PROVIDER_EVENT = "DUPLICATE_PROVIDER_EVENT"
    SENTIMENT = "SENTIMENT"


# "Automated" is a message whose MessageQueued names a sequence step; a human's has none.
RULES: Final[Mapping[Rule, str]] = {
    Rule.PHONE_DAILY_LIMIT: "per phone and local calendar day, WhatsApp MessageSent costing 1 "
    "stay within min(daily_limit, warm-up ramp of that day), settings as of each send",
    Rule.UNKNOWN_PHONE: "a WhatsApp MessageSent names a phone registered earlier in the export "
    "(reported once per phone; its sends are then held to the ramp's ceiling)",
    Rule.STICKY_PHONE: "a WhatsApp message is queued on the lead's assigned phone "
    "(PhoneAssigned) and sent from the phone it was queued on",
    Rule.BUSINESS_HOURS: "an automated MessageSent happens inside business hours",
    # Stricter than domain.md, which speaks of sends: a step is due inside the window, so
    # queueing it outside one means the scheduler queued late (the sender then waits).
    Rule.QUEUED_OUTSIDE_HOURS: "an automated MessageQueued happens inside business hours",
    Rule.AFTER_OPT_OUT: "no MessageQueued or MessageSent on a channel an earlier OptedOut covers",
    Rule.AFTER_REPLY: "no automated step of a stop-on-reply sequence queued after a reply "
    "stopped it (unless a SequenceStarted restarts it), none while snoozed, and no automated "
    "EMAIL_COLD queued or sent after any reply",
    Rule.AUTOMATION_BLOCKED: "no automated MessageQueued or MessageSent while the journey is "
    "PAUSED, CONVERTED or DEAD, under human control or under an open review",
    Rule.DEAD_JOURNEY: "no human MessageQueued or MessageSent on a DEAD journey",
    Rule.SEQUENCE_NOT_RUNNING: "an automated MessageQueued belongs to the running sequence",
    Rule.ONE_SEND_PER_MESSAGE: "one MessageSent per message id, after its MessageQueued in the "
    "same stream",
    Rule.ONE_QUEUE_PER_MESSAGE: "one MessageQueued per message id in a tenant",
    Rule.ONE_QUEUE_PER_STEP: "one MessageQueued per (lead, sequence, step)",
    Rule.LEGAL_TRANSITIONS: "each StateChanged starts from the journey's state and is in the "
    "transition table; a resume returns to the state paused from",
    Rule.STREAM_ORDER: "global positions strictly increase; stream versions count 1, 2, 3, ...",
    Rule.STREAM_START: "a lead stream starts with its one LeadEnrolled, a phone stream with its "
    "one PhoneRegistered; no event in the other family's stream",
    Rule.DUPLICATE_PROVIDER_EVENT: "a reply (channel, external id) and a provider fact on a "
    "message (delivered, read, opened, clicked, bounce kind) are recorded once",
    Rule.SENTIMENT: "a sentiment score is in -100..100 with confidence in 0..1, and a complaint "
    "or opt-out trigger is followed by a ReviewRequested before the lead's next reply, score "
    "or message",
}

AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


class ExportRow(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One line of `events export`; `data` is the event's own fields (see domain/events.py)."""

    global_position: int
    tenant_id: str
    stream_id: str
    stream_version: int
    event_type: str
    occurred_at: AwareDatetime
    recorded_at: AwareDatetime | None = None
    data: dict[str, Any]


class Violation(msgspec.Struct, frozen=True, kw_only=True):
    """One event that breaks `rule` (a `Rule` code), where it stands and what is wrong."""

    rule: str
    stream_id: str
    global_position: int
    detail: str
    tenant_id: str = ""


class ExportSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What the export held: counts per kind, channel and rule (channels and rules by name).

    `new_conversations` counts WhatsApp sends costing 1; `busiest_phone_day` is the most of
    them one phone started on one local day. `unknown_event_types` counts events of types
    this code does not know (a newer writer's), which only the stream checks see.
    """

    events: int
    tenants: int
    lead_streams: int
    phone_streams: int
    first_position: int | None
    last_position: int | None
    queued: dict[str, int]
    sent: dict[str, int]
    automated_sent: int
    manual_sent: int
    new_conversations: int
    busiest_phone_day: int
    replies: int
    opt_outs: int
    unknown_event_types: dict[str, int]
    violations: dict[str, int]


class InvariantReport(msgspec.Struct, frozen=True, kw_only=True):
    """The audit's verdict: every violation (in global order) and a summary of the export."""

    violations: tuple[Violation, ...]
    summary: ExportSummary

    @property
    def ok(self) -> bool:
        """Whether every invariant held."""
        return not self.violations

    def of_rule(self, rule: str) -> list[Violation]:
        """The violations of one rule."""
        return [v for v in self.violations if v.rule == rule]


class MalformedExport(ValueError):
    """A line or row that is not an export row, or whose data does not fit its event type.

    Attributes:
        reason: what is wrong, in msgspec's words.
        line: 1-based line of the input (when read from lines).
        column: 1-based character column, when the JSON decoder names one.
        row: 1-based ordinal of the row (when given rows, not lines).
        global_position: the row's position, once its envelope was read.
    """

    def __init__(
        self,
        reason: str,
        *,
        line: int | None = None,
        column: int | None = None,
        row: int | None = None,
        global_position: int | None = None,
    ) -> None:
        self.reason = reason
        self.line = line
        self.column = column
        self.row = row
        self.global_position = global_position
        where = [f"line {line}"] if line is not None else [f"row {row}"] if row is not None else []
        if column is not None:
            where.append(f"column {column}")
        if global_position is not None:
            where.append(f"global position {global_position}")
        super().__init__(f"{', '.join(where)}: {reason}" if where else reason)


_row_decoder = msgspec.json.Decoder(ExportRow)
_BYTE = re.compile(r"\(byte (\d+)\)")


def rows_from_jsonl(lines: Iterable[str | bytes]) -> Iterator[ExportRow]:
    """The rows of an export read line by line; blank lines are skipped.

    Raises:
        MalformedExport: a line is not JSON, or not an export row (naming line and column).
    """
    for _, row in numbered_rows(lines):
        yield row


def numbered_rows(lines: Iterable[str | bytes]) -> Iterator[tuple[int, ExportRow]]:
    """Like `rows_from_jsonl`, with each row's 1-based line number."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, _row_decoder.decode(line)
        # ValidationError is a DecodeError: the JSON is fine, the row's shape is not.
        except msgspec.ValidationError as exc:
            raise MalformedExport(str(exc), line=number) from None
        except msgspec.DecodeError as exc:
            raise MalformedExport(str(exc), line=number, column=_column(line, str(exc))) from None


def _column(line: str | bytes, message: str) -> int | None:
    """The character column of the byte offset msgspec names in `message`, if it names one."""
    found = _BYTE.search(message)
    if found is None:
        return None
    raw = line.encode("utf-8") if isinstance(line, str) else line
    return len(raw[: int(found.group(1))].decode("utf-8", errors="replace")) + 1


def check_export(
    rows: Iterable[ExportRow | Mapping[str, Any]],
    *,
    hours: BusinessHours,
    ramp: WarmupRamp = DEFAULT_RAMP,
) -> InvariantReport:
    """Audit export rows (in the export's order) against every rule of `RULES`.

    Raises:
        MalformedExport: a row is not an export row, or its data does not fit its type.
    """
    auditor = InvariantAuditor(hours=hours, ramp=ramp)
    for row in rows:
        auditor.feed(row)
    return auditor.report()


def check_jsonl(
    lines: Iterable[str | bytes], *, hours: BusinessHours, ramp: WarmupRamp = DEFAULT_RAMP
) -> InvariantReport:
    """Audit an export's lines; a malformed one is reported by its line number.

    Raises:
        MalformedExport: a line is not JSON, not an export row, or its data does not fit.
    """
    auditor = InvariantAuditor(hours=hours, ramp=ramp)
    for number, row in numbered_rows(lines):
        auditor.feed(row, line=number)
    return auditor.report()


@dataclass(slots=True)
class _Message:
    """What the rules need of one queued message."""

    channel: Channel
    sequence_id: str | None
    step: int | None
    phone_id: str | None
    facts: set[str] = field(default_factory=set)  # provider facts recorded on it

    @property
    def automated(self) -> bool:
        return self.step is not None


@dataclass(slots=True)
class _Journey:
    """The facts of one lead stream the rules are stated in."""

    stage: JourneyState = S.COLD
    paused_from: JourneyState | None = None
    sequence_id: str | None = None
    sequence_active: bool = False
    stop_on_reply: bool = True
    snoozed_until: datetime | None = None
    phone_id: str | None = None
    opted_out: set[OptOutScope] = field(default_factory=set)
    controlled_by: str | None = None
    open_reviews: set[str] = field(default_factory=set)
    replied: bool = False
    # A ReplyReceived whose effect is read from the stream's next event: a SequenceSnoozed
    # there makes it an out-of-office reply, anything else a reply that stops the sequence.
    reply_pending: bool = False
    stopped_by_reply: set[str] = field(default_factory=set)
    steps: set[tuple[str, int]] = field(default_factory=set)
    messages: dict[str, _Message] = field(default_factory=dict)
    replies: set[tuple[str, str]] = field(default_factory=set)
    review_due: int | None = None  # position of a complaint / opt-out score awaiting its review


@dataclass(slots=True)
class _Phone:
    """The settings of one phone stream the quota rule needs."""

    registered: bool = False
    status: PhoneStatus = PhoneStatus.PAUSED
    daily_limit: int = 0
    warmup_started: date | None = None


@dataclass(slots=True)
class _Stream:
    version: int
    state: _Journey | _Phone
    tenant_id: str
    stream_id: str


_Key = tuple[str, str]


class InvariantAuditor:
    """Reads export rows one at a time, in global order; `report()` gives the verdict so far.

    `check_export` and `check_jsonl` drive it; feed it directly to audit a log as it is read.
    """

    def __init__(self, *, hours: BusinessHours, ramp: WarmupRamp = DEFAULT_RAMP) -> None:
        self.hours = hours
        self.ramp = ramp
        self._zone = ZoneInfo(hours.zone)
        self._streams: dict[_Key, _Stream] = {}
        self._queued_ids: set[_Key] = set()
        self._sent_ids: set[_Key] = set()
        self._unknown_phones: set[_Key] = set()
        self._phone_days: dict[tuple[str, str, date], int] = {}
        self._violations: list[Violation] = []
        self._rows = 0
        self._first: int | None = None
        self._last: int | None = None
        self._tenants: set[str] = set()
        self._queued: dict[str, int] = {}
        self._sent: dict[str, int] = {}
        self._automated_sent = 0
        self._new_conversations = 0
        self._replies = 0
        self._opt_outs = 0
        self._unknown_types: dict[str, int] = {}
        self._row: ExportRow | None = None

    # -- reading -----------------------------------------------------------------------------

    def feed(self, row: ExportRow | Mapping[str, Any], *, line: int | None = None) -> None:
        """Check one row against the rules and fold it into the streams' state.

        Raises:
            MalformedExport: the row is not an export row, or its data does not fit its type.
        """
        self._rows += 1
        where: dict[str, int | None] = {"line": line} if line is not None else {"row": self._rows}
        if not isinstance(row, ExportRow):
            try:
                row = msgspec.convert(row, ExportRow)
            except msgspec.ValidationError as exc:
                raise MalformedExport(str(exc), **where) from None
        cls = EVENT_CLASSES.get(row.event_type)
        event: BaseEvent | None = None
        if cls is not None and cls in _DECODED:
            try:
                event = _decode(row, cls)
            except msgspec.ValidationError as exc:
                raise MalformedExport(
                    f"{row.event_type} data: {exc}", global_position=row.global_position, **where
                ) from None
        self._row = row
        self._check_order(row)
        stream = self._enter_stream(row, cls)
        if stream is None:
            return
        if cls is None:
            self._unknown_types[row.event_type] = self._unknown_types.get(row.event_type, 0) + 1
        elif isinstance(stream.state, _Journey):
            self._journey_event(stream.state, row, event)
        elif isinstance(event, PhoneEvent):
            _phone_event(stream.state, event)

    def report(self) -> InvariantReport:
        """The violations found so far, in global order, and the export's summary.

        A complaint or opt-out score still waiting for its review counts as a violation here:
        the export ended without it.
        """
        late = [
            Violation(
                rule=Rule.SENTIMENT,
                tenant_id=s.tenant_id,
                stream_id=s.stream_id,
                global_position=s.state.review_due,
                detail="a complaint or opt-out score opened no review before the export ended",
            )
            for s in self._streams.values()
            if isinstance(s.state, _Journey) and s.state.review_due is not None
        ]
        violations = sorted([*self._violations, *late], key=lambda v: (v.global_position, v.rule))
        by_rule: dict[str, int] = {}
        for v in violations:
            by_rule[v.rule] = by_rule.get(v.rule, 0) + 1
        phones = sum(1 for s in self._streams.values() if isinstance(s.state, _Phone))
        summary = ExportSummary(
            events=self._rows,
            tenants=len(self._tenants),
            lead_streams=len(self._streams) - phones,
            phone_streams=phones,
            first_position=self._first,
            last_position=self._last,
            queued=dict(sorted(self._queued.items())),
            sent=dict(sorted(self._sent.items())),
            automated_sent=self._automated_sent,
            manual_sent=sum(self._sent.values()) - self._automated_sent,
            new_conversations=self._new_conversations,
            busiest_phone_day=max(self._phone_days.values(), default=0),
            replies=self._replies,
            opt_outs=self._opt_outs,
            unknown_event_types=dict(sorted(self._unknown_types.items())),
            violations=dict(sorted(by_rule.items())),
        )
        return InvariantReport(violations=tuple(violations), summary=summary)

    # -- streams -----------------------------------------------------------------------------

    def _flag(self, rule: Rule, detail: str, *, position: int | None = None) -> None:
        row = self._row
        assert row is not None  # noqa: S101 - only called while a row is being checked
        self._violations.append(
            Violation(
                rule=rule,
                tenant_id=row.tenant_id,
                stream_id=row.stream_id,
                global_position=row.global_position if position is None else position,
                detail=detail,
            )
        )

    def _check_order(self, row: ExportRow) -> None:
        if self._last is not None and row.global_position <= self._last:
            self._flag(
                Rule.STREAM_ORDER,
                f"global position {row.global_position} follows {self._last}: "
                "positions must strictly increase",
            )
        if self._first is None:
            self._first = row.global_position
        # Compared with the row before, not the highest seen: one stray row is one violation,
        # not one for every row after it.
        self._last = row.global_position
        self._tenants.add(row.tenant_id)

    def _enter_stream(self, row: ExportRow, cls: type[BaseEvent] | None) -> _Stream | None:
        """The row's stream after its version and start checks; None: not for the rules."""
        key = (row.tenant_id, row.stream_id)
        phone_stream = row.stream_id.startswith(PHONE_STREAM_PREFIX)
        stream = self._streams.get(key)
        if stream is None:
            state: _Journey | _Phone = _Phone() if phone_stream else _Journey()
            stream = _Stream(0, state, row.tenant_id, row.stream_id)
            self._streams[key] = stream
            if row.stream_version != 1:
                self._flag(
                    Rule.STREAM_ORDER,
                    f"the stream's first event in the export is version {row.stream_version}, "
                    "not 1 (an export cut short cannot be audited)",
                )
            else:
                first = PhoneRegistered if phone_stream else LeadEnrolled
                if cls is not first:
                    self._flag(
                        Rule.STREAM_START,
                        f"the stream starts with {row.event_type}, not {first.__name__}",
                    )
        elif row.stream_version != stream.version + 1:
            self._flag(
                Rule.STREAM_ORDER,
                f"stream version {row.stream_version} follows {stream.version}",
            )
        else:
            start = PhoneRegistered if phone_stream else LeadEnrolled
            if cls is start:
                self._flag(
                    Rule.STREAM_START, f"{start.__name__} again, at version {row.stream_version}"
                )
        stream.version = row.stream_version
        family = PhoneEvent if phone_stream else Event
        if cls is not None and not issubclass(cls, family):
            kind = "phone" if phone_stream else "lead"
            self._flag(Rule.STREAM_START, f"a {row.event_type} event in a {kind} stream")
            return None
        return stream

    # -- journeys ----------------------------------------------------------------------------

    def _journey_event(  # noqa: C901, PLR0912 - one arm per event type
        self, j: _Journey, row: ExportRow, event: BaseEvent | None
    ) -> None:
        if j.reply_pending:
            j.reply_pending = False
            if not isinstance(event, SequenceSnoozed) and j.sequence_id and j.stop_on_reply:
                j.stopped_by_reply.add(j.sequence_id)
        if row.event_type == _SENTIMENT:
            # Read raw: the domain type refuses an out-of-range score, which is a finding here.
            self._sentiment(j, row)
            return
        match event:
            case LeadEnrolled():
                j.sequence_id, j.sequence_active = event.sequence_id, True
                j.stop_on_reply = event.stop_on_reply
            case PhoneAssigned():
                j.phone_id = event.phone_id
            case MessageQueued():
                self._queued_message(j, row, event)
            case MessageSent():
                self._sent_message(j, row, event)
            case MessageDelivered() | MessageRead() | MessageOpened() | MessageClicked():
                self._provider_fact(j, event.message_id, row.event_type)
            case MessageBounced():
                self._provider_fact(j, event.message_id, f"{row.event_type}:{event.kind}")
            case ReplyReceived():
                self._reply(j, event)
            case OptedOut():
                j.opted_out.add(event.channel)
                self._opt_outs += 1
            case StateChanged():
                self._state_changed(j, event)
            case SequenceStarted():
                j.sequence_id, j.sequence_active = event.sequence_id, True
                j.stop_on_reply, j.snoozed_until = event.stop_on_reply, None
                j.stopped_by_reply.discard(event.sequence_id)  # a human restarted it
            case SequenceStopped():
                j.sequence_active, j.snoozed_until = False, None
            case SequenceSnoozed():
                j.snoozed_until = event.until
            case HumanTookControl():
                j.controlled_by = event.user
            case HumanReleasedControl():
                j.controlled_by = None
            case ReviewRequested():
                j.open_reviews.add(event.review_id)
                j.review_due = None
            case ReviewResolved():
                j.open_reviews.discard(event.review_id)
            case _:
                pass  # a type no rule reads (MessageFailed, MessageCancelled, ...)

    def _queued_message(self, j: _Journey, row: ExportRow, e: MessageQueued) -> None:
        self._review_overdue(j)
        self._queued[e.channel] = self._queued.get(e.channel, 0) + 1
        key = (row.tenant_id, e.message_id)
        if key in self._queued_ids:
            self._flag(Rule.ONE_QUEUE_PER_MESSAGE, f"message {e.message_id} is queued again")
        self._queued_ids.add(key)
        message = _Message(e.channel, e.sequence_id, e.step, e.phone_id)
        what = _describe(e.message_id, message)
        self._opt_out_check(j, e.channel, f"{what} queued")
        if message.automated:
            self._automation_checks(j, row, message, what, "queued")
            self._step_checks(j, row, e, what)
        elif j.stage is S.DEAD:
            self._flag(Rule.DEAD_JOURNEY, f"{what} queued on a DEAD journey")
        if e.channel is Channel.WHATSAPP:
            if j.phone_id is None:
                self._flag(Rule.STICKY_PHONE, f"{what} queued with no PhoneAssigned before it")
            elif e.phone_id != j.phone_id:
                self._flag(
                    Rule.STICKY_PHONE,
                    f"{what} queued on phone {e.phone_id}; the lead's phone is {j.phone_id}",
                )
        j.messages.setdefault(e.message_id, message)

    def _step_checks(self, j: _Journey, row: ExportRow, e: MessageQueued, what: str) -> None:
        sequence = e.sequence_id or ""
        if not j.sequence_active or j.sequence_id != e.sequence_id:
            running = f"{j.sequence_id} is running" if j.sequence_active else "none is running"
            self._flag(Rule.SEQUENCE_NOT_RUNNING, f"{what} queued, but {running}")
        step = (sequence, e.step or 0)
        if step in j.steps:
            self._flag(Rule.ONE_QUEUE_PER_STEP, f"{what}: that step was queued before")
        j.steps.add(step)
        if sequence in j.stopped_by_reply:
            self._flag(
                Rule.AFTER_REPLY,
                f"{what} queued after a reply stopped {sequence} (stop_on_reply)",
            )
        if j.snoozed_until is not None and row.occurred_at < j.snoozed_until:
            self._flag(
                Rule.AFTER_REPLY,
                f"{what} queued at {self._local(row.occurred_at)} while the sequence is "
                f"snoozed until {self._local(j.snoozed_until)} (out of office)",
            )

    def _sent_message(self, j: _Journey, row: ExportRow, e: MessageSent) -> None:
        self._sent[e.channel] = self._sent.get(e.channel, 0) + 1
        key = (row.tenant_id, e.message_id)
        if key in self._sent_ids:
            self._flag(Rule.ONE_SEND_PER_MESSAGE, f"message {e.message_id} is sent again")
        self._sent_ids.add(key)
        message = j.messages.get(e.message_id)
        if message is None:
            self._flag(
                Rule.ONE_SEND_PER_MESSAGE,
                f"message {e.message_id} is sent but was never queued in this stream",
            )
            message = _Message(e.channel, None, None, e.phone_id)
        what = _describe(e.message_id, message)
        self._opt_out_check(j, e.channel, f"{what} sent")
        if message.automated:
            self._automated_sent += 1
            self._automation_checks(j, row, message, what, "sent")
        elif j.stage is S.DEAD:
            self._flag(Rule.DEAD_JOURNEY, f"{what} sent on a DEAD journey")
        if e.channel is Channel.WHATSAPP:
            if e.phone_id and message.phone_id and e.phone_id != message.phone_id:
                self._flag(
                    Rule.STICKY_PHONE,
                    f"{what} sent from phone {e.phone_id}, queued on {message.phone_id}",
                )
            if e.quota_cost == 1:
                self._new_conversation(row, e.phone_id or message.phone_id, what)

    def _automation_checks(
        self, j: _Journey, row: ExportRow, message: _Message, what: str, verb: str
    ) -> None:
        """The rules every automated message obeys, when queued and when sent."""
        if not self.hours.is_open(row.occurred_at):
            self._flag(
                Rule.BUSINESS_HOURS if verb == "sent" else Rule.QUEUED_OUTSIDE_HOURS,
                f"{what} {verb} at {self._local(row.occurred_at)}, outside business hours",
            )
        blocks = []
        if j.stage in _BLOCKING_STAGES:
            blocks.append(f"the journey is {j.stage}")
        if j.controlled_by is not None:
            blocks.append(f"{j.controlled_by} controls the conversation")
        if j.open_reviews:
            blocks.append(f"review {', '.join(sorted(j.open_reviews))} is open")
        if blocks:
            self._flag(Rule.AUTOMATION_BLOCKED, f"{what} {verb} while {'; '.join(blocks)}")
        if j.replied and message.channel is Channel.EMAIL_COLD:
            self._flag(Rule.AFTER_REPLY, f"{what} {verb} after the lead replied")

    def _opt_out_check(self, j: _Journey, channel: Channel, what: str) -> None:
        scope = opt_out_scope_of(channel)
        if OptOutScope.ALL in j.opted_out:
            self._flag(Rule.AFTER_OPT_OUT, f"{what} after an opt-out of ALL")
        elif scope is not None and scope in j.opted_out:
            self._flag(Rule.AFTER_OPT_OUT, f"{what} after an opt-out of {scope}")

    def _new_conversation(self, row: ExportRow, phone_id: str | None, what: str) -> None:
        """Count a WhatsApp send costing 1 on its phone's local day; flag it past the limit."""
        self._new_conversations += 1
        if phone_id is None:
            self._flag(Rule.UNKNOWN_PHONE, f"{what} costs a new conversation but names no phone")
            return
        day = self.hours.local_date(row.occurred_at)
        counter = (row.tenant_id, phone_id, day)
        used = self._phone_days.get(counter, 0) + 1
        self._phone_days[counter] = used
        stream = self._streams.get((row.tenant_id, PHONE_STREAM_PREFIX + phone_id))
        phone = stream.state if stream is not None else None
        if not isinstance(phone, _Phone) or not phone.registered:
            if (row.tenant_id, phone_id) not in self._unknown_phones:
                self._unknown_phones.add((row.tenant_id, phone_id))
                self._flag(
                    Rule.UNKNOWN_PHONE,
                    f"{what} from phone {phone_id}, which no earlier PhoneRegistered in the "
                    f"export registers (held to the ceiling of {self.ramp.ceiling} a day)",
                )
            limit, why = self.ramp.ceiling, "the ramp's ceiling (phone unknown)"
        else:
            view = PhoneQuotaView(
                phone_id=phone_id,
                status=phone.status,
                daily_limit=phone.daily_limit,
                warmup_started=phone.warmup_started,
            )
            limit, warming_up = effective_limit(view, day, self.ramp)
            why = (
                f"warm-up day {(day - phone.warmup_started).days + 1} of the ramp"
                if warming_up and phone.warmup_started is not None
                else f"its daily limit {phone.daily_limit}"
            )
        if used > limit:
            self._flag(
                Rule.PHONE_DAILY_LIMIT,
                f"{what}: new conversation {used} of phone {phone_id} on {day} "
                f"({self.hours.zone}) exceeds its limit {limit}, {why}",
            )

    def _provider_fact(self, j: _Journey, message_id: str, fact: str) -> None:
        message = j.messages.get(message_id)
        if message is None:
            return  # a fact on a message never queued: nothing to compare it with
        if fact in message.facts:
            self._flag(
                Rule.DUPLICATE_PROVIDER_EVENT, f"{fact} recorded again for message {message_id}"
            )
        message.facts.add(fact)

    def _reply(self, j: _Journey, e: ReplyReceived) -> None:
        self._review_overdue(j)
        self._replies += 1
        key = (str(e.channel), e.external_id)
        if key in j.replies:
            self._flag(
                Rule.DUPLICATE_PROVIDER_EVENT,
                f"reply {e.external_id} on {e.channel} recorded again",
            )
        j.replies.add(key)
        j.replied = j.reply_pending = True

    def _sentiment(self, j: _Journey, row: ExportRow) -> None:
        self._review_overdue(j)
        score, confidence = row.data.get("score"), row.data.get("confidence")
        if not _number_in(score, -100, 100, integer=True):
            self._flag(Rule.SENTIMENT, f"sentiment score {score!r} is outside -100..100")
        if not _number_in(confidence, 0, 1, integer=False):
            self._flag(Rule.SENTIMENT, f"confidence {confidence!r} is outside 0..1")
        triggers = row.data.get("triggers") or ()
        if isinstance(triggers, list) and _REVIEW_TRIGGERS.intersection(map(str, triggers)):
            j.review_due = row.global_position

    def _review_overdue(self, j: _Journey) -> None:
        """Flag a complaint or opt-out score still without its review at the lead's next step."""
        if j.review_due is not None:
            self._flag(
                Rule.SENTIMENT,
                "a complaint or opt-out score opened no review before the lead's next event",
                position=j.review_due,
            )
            j.review_due = None

    def _state_changed(self, j: _Journey, e: StateChanged) -> None:
        if e.from_state is not j.stage:
            self._flag(
                Rule.LEGAL_TRANSITIONS,
                f"StateChanged from {e.from_state}, but the journey was {j.stage}",
            )
        if e.to_state not in targets_from(e.from_state):
            self._flag(
                Rule.LEGAL_TRANSITIONS,
                f"{e.from_state} -> {e.to_state} is not in the transition table",
            )
        # From PAUSED, every move but the end (to DEAD) is a resume, which has one target.
        elif (
            e.from_state is S.PAUSED
            and e.to_state is not S.DEAD
            and j.paused_from not in (None, e.to_state)
        ):
            self._flag(
                Rule.LEGAL_TRANSITIONS,
                f"resumed to {e.to_state}, but it was paused from {j.paused_from}",
            )
        # The log is history: the state moves as written, whatever was flagged.
        if e.to_state is S.PAUSED:
            j.paused_from = e.from_state
        elif e.from_state is S.PAUSED:
            j.paused_from = None
        j.stage = e.to_state

    def _local(self, at: datetime) -> str:
        return at.astimezone(self._zone).strftime("%a %Y-%m-%d %H:%M %Z")


def _phone_event(phone: _Phone, event: PhoneEvent) -> None:
    match event:
        case PhoneRegistered():
            phone.registered, phone.status = True, event.status
            phone.daily_limit, phone.warmup_started = event.daily_limit, event.warmup_started
        case PhoneSettingsChanged():
            phone.daily_limit, phone.warmup_started = event.daily_limit, event.warmup_started
        case PhoneStatusChanged():
            phone.status = event.status
        case _:
            pass


# The types whose fields a rule reads; the others are checked for order only, undecoded.
_DECODED: Final[frozenset[type[BaseEvent]]] = frozenset(
    {
        LeadEnrolled,
        PhoneAssigned,
        MessageQueued,
        MessageSent,
        *_PROVIDER_FACTS,
        MessageBounced,
        ReplyReceived,
        OptedOut,
        StateChanged,
        SequenceStarted,
        SequenceStopped,
        SequenceSnoozed,
        HumanTookControl,
        HumanReleasedControl,
        ReviewRequested,
        ReviewResolved,
        PhoneRegistered,
        PhoneSettingsChanged,
        PhoneStatusChanged,
    }
)


def _decode(row: ExportRow, cls: type[BaseEvent]) -> BaseEvent:
    """The row as its domain event: the export's `data` plus the envelope it left out."""
    payload = dict(row.data)
    payload["event_id"] = ""  # not exported; no rule reads it
    payload["tenant_id"] = row.tenant_id
    payload["occurred_at"] = row.occurred_at
    if issubclass(cls, Event):
        payload["lead_id"] = row.stream_id
    return msgspec.convert(payload, cls)


def _describe(message_id: str, message: _Message) -> str:
    if message.automated:
        return (
            f"automated {message.channel} message {message_id} "
            f"(step {message.step} of {message.sequence_id})"
        )
    return f"human {message.channel} message {message_id}"


def _number_in(value: object, low: float, high: float, *, integer: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if integer and not isinstance(value, int):
        return False
    return math.isfinite(value) and low <= value <= high
