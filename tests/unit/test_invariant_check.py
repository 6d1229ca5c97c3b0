"""The export auditor: each rule of domain.md catches its violation and is quiet on a valid log.

Exports are built row by row with `Export`, as `events export` would print them (JSON-ready
values, one stream version after another); the property at the end feeds the auditor the
journeys the domain's own `decide` produces, which must all pass.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule
from test_journey_spec import JourneyMachine

from cerniq_outreach.adapters.eventstore.serialization import export_data
from cerniq_outreach.application.invariant_check import (
    RULES,
    InvariantReport,
    MalformedExport,
    Rule,
    check_export,
    check_jsonl,
    rows_from_jsonl,
)
from cerniq_outreach.domain.business_hours import BusinessHours
from cerniq_outreach.domain.enums import PhoneStatus
from cerniq_outreach.domain.events import PhoneRegistered, event_type_name, phone_stream
from cerniq_outreach.domain.quota import WarmupRamp

from strategies import outbound_channels, texts, time_steps

HOURS = BusinessHours()  # Mon-Fri 09:00-18:00 Europe/Bucharest
BUCHAREST = ZoneInfo("Europe/Bucharest")
MONDAY = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # 10:00 in Bucharest (UTC+2 in winter)
SATURDAY = datetime(2026, 3, 7, 10, 0, tzinfo=UTC)  # 12:00 in Bucharest, closed
COLD = "cold-default"


class Export:
    """An export under construction: rows in global order, versions counted per stream."""

    def __init__(self, tenant: str = "t1") -> None:
        self.tenant = tenant
        self.rows: list[dict[str, Any]] = []
        self.versions: dict[str, int] = {}

    def add(self, stream: str, event_type: str, at: datetime, **data: Any) -> int:
        """Append one row; returns its global position."""
        version = self.versions.get(stream, 0) + 1
        self.versions[stream] = version
        position = len(self.rows) + 1
        self.rows.append(
            {
                "global_position": position,
                "tenant_id": self.tenant,
                "stream_id": stream,
                "stream_version": version,
                "event_type": event_type,
                "occurred_at": at.isoformat(),
                "recorded_at": at.isoformat(),
                "data": data,
            }
        )
        return position

    def phone(self, phone_id: str, at: datetime = MONDAY, **settings: Any) -> int:
        fields = {"number": "+40722123456", "daily_limit": 200, "status": "ACTIVE"} | settings
        return self.add(phone_stream(phone_id), "PhoneRegistered", at, phone_id=phone_id, **fields)

    def lead(self, lead: str, at: datetime = MONDAY, *, stop_on_reply: bool = True) -> int:
        company = {"name": "Agro Verde SRL", "phone": "+40744000111", "email": "a@agro.ro"}
        return self.add(
            lead,
            "LeadEnrolled",
            at,
            sequence_id=COLD,
            company=company,
            stop_on_reply=stop_on_reply,
        )

    def queue(
        self,
        lead: str,
        message: str,
        at: datetime = MONDAY,
        *,
        channel: str = "EMAIL_COLD",
        step: int | None = None,
        sequence: str = COLD,
        phone: str | None = None,
        cost: int = 0,
    ) -> int:
        return self.add(
            lead,
            "MessageQueued",
            at,
            message_id=message,
            channel=channel,
            sequence_id=sequence if step is not None else None,
            step=step,
            content_hash="h",
            quota_cost=cost,
            phone_id=phone,
        )

    def send(
        self,
        lead: str,
        message: str,
        at: datetime = MONDAY,
        *,
        channel: str = "EMAIL_COLD",
        phone: str | None = None,
        cost: int = 0,
    ) -> int:
        return self.add(
            lead,
            "MessageSent",
            at,
            message_id=message,
            channel=channel,
            phone_id=phone,
            quota_cost=cost,
            provider="sandbox",
            external_id=f"x-{message}",
        )

    def move(self, lead: str, source: str, target: str, at: datetime = MONDAY) -> int:
        return self.add(lead, "StateChanged", at, from_state=source, to_state=target, reason="test")

    def step_out(self, lead: str, message: str, step: int, at: datetime = MONDAY, **kw: Any) -> int:
        """An automated step queued and sent at once; returns the send's position."""
        self.queue(lead, message, at, step=step, **kw)
        kw.pop("sequence", None)
        return self.send(lead, message, at, **kw)

    def conversation(self, lead: str, phone: str, at: datetime) -> int:
        """A new lead's first WhatsApp message (a human's, so any hour): cost 1 on `phone`."""
        self.lead(lead, at - timedelta(minutes=1))
        self.add(lead, "PhoneAssigned", at, phone_id=phone)
        self.queue(lead, f"{lead}-m", at, channel="WHATSAPP", phone=phone, cost=1)
        return self.send(lead, f"{lead}-m", at, channel="WHATSAPP", phone=phone, cost=1)

    def reply(self, lead: str, at: datetime = MONDAY, external_id: str = "r1") -> int:
        return self.add(
            lead,
            "ReplyReceived",
            at,
            channel="EMAIL_COLD",
            external_id=external_id,
            text_preview="Bună ziua",
            content_hash="h",
        )

    def check(self, hours: BusinessHours = HOURS, **kw: Any) -> InvariantReport:
        return check_export(self.rows, hours=hours, **kw)


def rules_of(report: InvariantReport) -> list[str]:
    return [v.rule for v in report.violations]


def assert_clean(report: InvariantReport) -> None:
    assert report.ok, "\n".join(
        f"{v.rule} @{v.global_position}: {v.detail}" for v in report.violations
    )


def at_local(day: str, clock: str, offset_hours: int) -> datetime:
    """A Bucharest wall-clock time given with its UTC offset that day (2 winter, 3 summer)."""
    local = datetime.fromisoformat(f"{day}T{clock}")
    return (local - timedelta(hours=offset_hours)).replace(tzinfo=UTC)


# -- a valid journey -------------------------------------------------------------------------


def valid_journey() -> Export:
    """Enrolled, cold email, WhatsApp follow-up, reply, warm sequence, pause and resume."""
    log = Export()
    log.phone("p1")
    log.lead("lead-1")
    log.step_out("lead-1", "m1", 1)
    log.move("lead-1", "COLD", "CONTACTED_EMAIL")
    later = MONDAY + timedelta(days=1)
    log.add("lead-1", "PhoneAssigned", later, phone_id="p1")
    log.step_out("lead-1", "m2", 2, later, channel="WHATSAPP", phone="p1", cost=1)
    log.move("lead-1", "CONTACTED_EMAIL", "CONTACTED_WA", later)
    log.add("lead-1", "MessageDelivered", later, message_id="m2")
    log.reply("lead-1", later)
    log.add("lead-1", "SequenceStopped", later, reason="reply received")
    log.move("lead-1", "CONTACTED_WA", "WARM_REPLY", later)
    log.add(
        "lead-1",
        "SentimentScored",
        later,
        score=60,
        label="positive",
        confidence=0.9,
        triggers=["BUYING_SIGNAL"],
    )
    log.add("lead-1", "SequenceStarted", later, sequence_id="warm-1", started_by="ana")
    log.step_out("lead-1", "m3", 1, later, channel="EMAIL_WARM", sequence="warm-1")
    log.move("lead-1", "WARM_REPLY", "PAUSED", later)
    log.queue("lead-1", "m4", later, channel="WHATSAPP", phone="p1")  # a human writes
    log.send("lead-1", "m4", later, channel="WHATSAPP", phone="p1")
    log.move("lead-1", "PAUSED", "WARM_REPLY", later)
    log.move("lead-1", "WARM_REPLY", "NEGOTIATION", later)
    return log


def test_a_valid_journey_breaks_no_rule_and_is_summarised():
    """A journey that keeps every rule reports nothing, and the summary counts what it held."""
    report = valid_journey().check()
    assert_clean(report)
    summary = report.summary
    assert (summary.events, summary.lead_streams, summary.phone_streams) == (22, 1, 1)
    assert summary.sent == {"EMAIL_COLD": 1, "EMAIL_WARM": 1, "WHATSAPP": 2}
    assert (summary.automated_sent, summary.manual_sent) == (3, 1)
    assert (summary.new_conversations, summary.busiest_phone_day, summary.replies) == (1, 1, 1)
    assert summary.violations == {}


def test_every_rule_is_described():
    """Each rule code has a description an operator can read."""
    assert set(RULES) == set(Rule)
    assert all(text.strip() for text in RULES.values())


# -- PHONE_DAILY_LIMIT and UNKNOWN_PHONE -----------------------------------------------------


def test_warm_up_day_one_allows_20_new_conversations_and_flags_the_21st():
    """On day 1 of the default ramp a phone starts 20 conversations; the 21st is a violation."""
    log = Export()
    log.phone("p1", warmup_started="2026-03-02")
    sends = [log.conversation(f"lead-{i}", "p1", MONDAY + timedelta(minutes=i)) for i in range(21)]
    report = log.check()
    assert rules_of(report) == [Rule.PHONE_DAILY_LIMIT]
    [violation] = report.violations
    assert violation.global_position == sends[20]
    assert "limit 20" in violation.detail
    assert "warm-up day 1" in violation.detail


def test_twenty_new_conversations_on_warm_up_day_one_are_fine():
    """Exactly the day-1 limit of the ramp is allowed."""
    log = Export()
    log.phone("p1", warmup_started="2026-03-02")
    for i in range(20):
        log.conversation(f"lead-{i}", "p1", MONDAY + timedelta(minutes=i))
    assert_clean(log.check())


def test_the_ramp_rises_on_later_days_and_a_custom_ramp_is_honoured():
    """Day 2 of a 2-day ramp is its ceiling; the limit is min(daily_limit, ramp)."""
    ramp = WarmupRamp(start=1, ceiling=3, days=2)
    log = Export()
    log.phone("p1", warmup_started="2026-03-02", daily_limit=2)
    log.conversation("a", "p1", MONDAY)  # day 1: limit 1
    log.conversation("b", "p1", MONDAY + timedelta(days=1))  # day 2: min(2, 3) = 2
    log.conversation("c", "p1", MONDAY + timedelta(days=1, minutes=1))
    third = log.conversation("d", "p1", MONDAY + timedelta(days=1, minutes=2))
    report = log.check(ramp=ramp)
    assert [(v.rule, v.global_position) for v in report.violations] == [
        (Rule.PHONE_DAILY_LIMIT, third)
    ]
    assert "daily limit 2" in report.violations[0].detail


@pytest.mark.parametrize(
    ("day", "offset"), [("2026-03-02", 2), ("2026-03-30", 3)], ids=["winter", "summer"]
)
def test_the_daily_limit_counts_local_calendar_days_across_utc_midnight(day, offset):
    """A Bucharest day starts at 22:00 UTC in winter and 21:00 UTC in summer, not at 00:00 UTC."""
    midnight = at_local(day, "00:00", offset)
    assert (midnight.hour, midnight.astimezone(BUCHAREST).hour) == (24 - offset, 0)
    log = Export()
    log.phone("p1", daily_limit=1)
    previous = (date.fromisoformat(day) - timedelta(days=1)).isoformat()
    # 23:59 local the evening before, then 00:00 local: two local days, one UTC day.
    log.conversation("a", "p1", at_local(previous, "23:59", offset))
    log.conversation("b", "p1", at_local(day, "00:00", offset))
    assert_clean(log.check())
    # A third, at 23:59 local the same day: a second conversation that local day, while UTC
    # already counts the next day (in UTC, "b" and this one fall on different dates).
    late = at_local(day, "23:59", offset)
    assert late.date() != midnight.date()
    third = log.conversation("c", "p1", late)
    report = log.check()
    assert [(v.rule, v.global_position) for v in report.violations] == [
        (Rule.PHONE_DAILY_LIMIT, third)
    ]
    assert day in report.violations[0].detail


def test_lowered_settings_apply_to_the_sends_after_them():
    """PhoneSettingsChanged lowers the limit for later sends of the same day."""
    log = Export()
    log.phone("p1")
    log.conversation("a", "p1", MONDAY)
    log.conversation("b", "p1", MONDAY + timedelta(minutes=1))
    log.add(phone_stream("p1"), "PhoneSettingsChanged", MONDAY, phone_id="p1", daily_limit=2)
    third = log.conversation("c", "p1", MONDAY + timedelta(minutes=2))
    report = log.check()
    assert [(v.rule, v.global_position) for v in report.violations] == [
        (Rule.PHONE_DAILY_LIMIT, third)
    ]


def test_follow_ups_cost_nothing_against_the_limit():
    """WhatsApp messages costing 0 are never counted as new conversations."""
    log = Export()
    log.phone("p1", daily_limit=1)
    log.conversation("a", "p1", MONDAY)
    for i in range(3):
        log.queue("a", f"f{i}", channel="WHATSAPP", phone="p1")
        log.send("a", f"f{i}", channel="WHATSAPP", phone="p1")
    assert_clean(log.check())


def test_a_phone_missing_from_the_export_is_reported_once():
    """Sends from a phone no PhoneRegistered registers are flagged once for that phone."""
    log = Export()
    first = log.conversation("a", "ghost", MONDAY)
    log.conversation("b", "ghost", MONDAY + timedelta(minutes=1))
    report = log.check()
    assert [(v.rule, v.global_position) for v in report.violations] == [(Rule.UNKNOWN_PHONE, first)]
    assert "ghost" in report.violations[0].detail


# -- BUSINESS_HOURS ----------------------------------------------------------------------------


def test_an_automated_message_outside_business_hours_is_flagged_when_queued_and_sent():
    """A sequence step queued and sent on a Saturday: a late queue and a send out of hours."""
    log = Export()
    log.lead("a")
    queued = log.queue("a", "m1", SATURDAY, step=1)
    sent = log.send("a", "m1", SATURDAY)
    report = log.check()
    assert [(v.rule, v.global_position) for v in report.violations] == [
        (Rule.QUEUED_OUTSIDE_HOURS, queued),
        (Rule.BUSINESS_HOURS, sent),
    ]
    assert "Sat 2026-03-07 12:00" in report.violations[0].detail


def test_a_human_message_is_exempt_from_business_hours():
    """A person may write on a Saturday; only automation keeps to the window."""
    log = Export()
    log.lead("a")
    log.queue("a", "m1", SATURDAY, channel="EMAIL_WARM")
    log.send("a", "m1", SATURDAY, channel="EMAIL_WARM")
    assert_clean(log.check())


def test_the_window_closes_at_18_00_local_time():
    """17:59 local is inside the window, 18:00 is outside (the end is exclusive)."""
    log = Export()
    log.lead("a")
    log.step_out("a", "m1", 1, at_local("2026-03-02", "17:59", 2))
    late = log.step_out("a", "m2", 2, at_local("2026-03-02", "18:00", 2))
    assert [(v.rule, v.global_position) for v in log.check().violations] == [
        (Rule.QUEUED_OUTSIDE_HOURS, late - 1),
        (Rule.BUSINESS_HOURS, late),
    ]


# -- AFTER_OPT_OUT -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "channel", "silenced"),
    [
        ("WHATSAPP", "WHATSAPP", True),
        ("WHATSAPP", "EMAIL_WARM", False),
        ("EMAIL", "EMAIL_COLD", True),
        ("EMAIL", "EMAIL_WARM", True),
        ("EMAIL", "WHATSAPP", False),
        ("EMAIL", "PHONE", False),
        ("ALL", "PHONE", True),
        ("ALL", "MANUAL", True),
    ],
)
def test_an_opt_out_silences_its_channels_for_every_message(scope, channel, silenced):
    """After OptedOut, nothing is queued or sent on a channel its scope covers, human or not."""
    log = Export()
    log.phone("p1")
    log.lead("a")
    phone = "p1" if channel == "WHATSAPP" else None
    if phone:
        log.add("a", "PhoneAssigned", MONDAY, phone_id=phone)
    log.add("a", "OptedOut", MONDAY, channel=scope, source="test")
    queued = log.queue("a", "m1", channel=channel, phone=phone)
    sent = log.send("a", "m1", channel=channel, phone=phone)
    report = log.check()
    expected = [(Rule.AFTER_OPT_OUT, queued), (Rule.AFTER_OPT_OUT, sent)] if silenced else []
    assert [(v.rule, v.global_position) for v in report.violations] == expected


# -- AFTER_REPLY -------------------------------------------------------------------------------


def test_a_stopping_reply_forbids_the_rest_of_the_sequence():
    """After a reply stops a stop-on-reply sequence, its next step may not be queued."""
    log = Export()
    log.lead("a")
    log.step_out("a", "m1", 1, channel="EMAIL_WARM")
    log.reply("a")
    # The engine forgot to stop the sequence: the rule still sees the reply stopped it.
    late = log.queue("a", "m2", step=2, channel="EMAIL_WARM")
    report = log.check()
    assert [(v.rule, v.global_position) for v in report.violations] == [(Rule.AFTER_REPLY, late)]


def test_a_warm_sequence_a_human_starts_after_the_reply_may_run():
    """A SequenceStarted after the reply lets that sequence's steps out."""
    log = Export()
    log.lead("a")
    log.step_out("a", "m1", 1, channel="EMAIL_WARM")
    log.reply("a")
    log.add("a", "SequenceStopped", MONDAY, reason="reply received")
    log.add("a", "SequenceStarted", MONDAY, sequence_id="warm-1", started_by="ana")
    log.step_out("a", "m2", 1, channel="EMAIL_WARM", sequence="warm-1")
    assert_clean(log.check())


def test_an_out_of_office_reply_snoozes_instead_of_stopping():
    """A reply followed by SequenceSnoozed does not stop the sequence; it waits for the snooze."""
    log = Export()
    log.lead("a")
    log.step_out("a", "m1", 1, channel="EMAIL_WARM")
    log.reply("a")
    back = MONDAY + timedelta(days=2)
    log.add("a", "SequenceSnoozed", MONDAY, until=back.isoformat(), reason="out of office")
    log.step_out("a", "m2", 2, back, channel="EMAIL_WARM")
    assert_clean(log.check())


def test_a_step_queued_before_the_snooze_ends_is_flagged():
    """An out-of-office pause holds the sequence until its end."""
    log = Export()
    log.lead("a")
    log.reply("a")
    log.add(
        "a", "SequenceSnoozed", MONDAY, until=(MONDAY + timedelta(days=2)).isoformat(), reason="ooo"
    )
    early = log.queue("a", "m1", MONDAY + timedelta(days=1), step=1, channel="EMAIL_WARM")
    report = log.check()
    assert [(v.rule, v.global_position) for v in report.violations] == [(Rule.AFTER_REPLY, early)]
    assert "snoozed" in report.violations[0].detail


def test_a_sequence_without_stop_on_reply_goes_on_after_a_reply():
    """stop_on_reply false: a reply leaves the sequence running."""
    log = Export()
    log.lead("a", stop_on_reply=False)
    log.reply("a")
    log.step_out("a", "m1", 1, channel="EMAIL_WARM")
    assert_clean(log.check())


def test_no_automated_cold_email_after_any_reply():
    """Even after an out-of-office reply, a cold email step may not go out."""
    log = Export()
    log.lead("a", stop_on_reply=False)
    log.reply("a")
    log.add("a", "SequenceSnoozed", MONDAY, until=MONDAY.isoformat(), reason="ooo")
    queued = log.queue("a", "m1", step=1, channel="EMAIL_COLD")
    sent = log.send("a", "m1", channel="EMAIL_COLD")
    report = log.check()
    assert [(v.rule, v.global_position) for v in report.violations] == [
        (Rule.AFTER_REPLY, queued),
        (Rule.AFTER_REPLY, sent),
    ]


# -- AUTOMATION_BLOCKED and DEAD_JOURNEY -------------------------------------------------------

BLOCKS = {
    "paused": [("StateChanged", {"from_state": "COLD", "to_state": "PAUSED", "reason": "x"})],
    "human control": [("HumanTookControl", {"user": "ana"})],
    "open review": [
        (
            "ReviewRequested",
            {
                "review_id": "rv1",
                "reason": "MANUAL_FLAG",
                "priority": "LOW",
                "sla_due_at": "2026-03-05T08:00:00+00:00",
            },
        )
    ],
    "dead": [("StateChanged", {"from_state": "COLD", "to_state": "DEAD", "reason": "x"})],
}
UNBLOCKS = {
    "paused": [("StateChanged", {"from_state": "PAUSED", "to_state": "COLD", "reason": "x"})],
    "human control": [("HumanReleasedControl", {"user": "ana"})],
    "open review": [
        ("ReviewResolved", {"review_id": "rv1", "resolution": "HANDED_BACK", "resolved_by": "ana"})
    ],
}


@pytest.mark.parametrize("block", BLOCKS)
def test_automation_may_not_write_while_blocked(block):
    """Paused, human-controlled, under review or dead: no automated message is queued or sent."""
    log = Export()
    log.lead("a")
    log.queue("a", "m0", step=1)  # queued before the block...
    for event_type, data in BLOCKS[block]:
        log.add("a", event_type, MONDAY, **data)
    sent = log.send("a", "m0")  # ...may not be sent during it
    queued = log.queue("a", "m1", step=2)
    report = log.check()
    assert [(v.rule, v.global_position) for v in report.violations] == [
        (Rule.AUTOMATION_BLOCKED, sent),
        (Rule.AUTOMATION_BLOCKED, queued),
    ]


@pytest.mark.parametrize("block", UNBLOCKS)
def test_automation_resumes_once_the_block_is_lifted(block):
    """Resume, release and a resolved review hand the journey back to automation."""
    log = Export()
    log.lead("a")
    for event_type, data in [*BLOCKS[block], *UNBLOCKS[block]]:
        log.add("a", event_type, MONDAY, **data)
    log.step_out("a", "m1", 1)
    assert_clean(log.check())


def test_a_human_message_on_a_dead_journey_is_flagged_but_not_on_a_paused_one():
    """A person may write to a paused lead, never to a dead one."""
    log = Export()
    log.lead("a")
    log.move("a", "COLD", "PAUSED")
    log.queue("a", "m1", channel="EMAIL_WARM")
    log.move("a", "PAUSED", "COLD")
    log.move("a", "COLD", "DEAD")
    dead = log.queue("a", "m2", channel="EMAIL_WARM")
    assert [(v.rule, v.global_position) for v in log.check().violations] == [
        (Rule.DEAD_JOURNEY, dead)
    ]


# -- messages and steps ------------------------------------------------------------------------


def test_a_message_sent_twice_or_never_queued_is_flagged():
    """One MessageSent per message id, and only after its MessageQueued in the same stream."""
    log = Export()
    log.lead("a")
    log.step_out("a", "m1", 1)
    again = log.send("a", "m1")
    stray = log.send("a", "never-queued")
    report = log.check()
    assert [(v.rule, v.global_position) for v in report.violations] == [
        (Rule.ONE_SEND_PER_MESSAGE, again),
        (Rule.ONE_SEND_PER_MESSAGE, stray),
    ]


def test_a_step_or_a_message_id_queued_twice_is_flagged():
    """One MessageQueued per (lead, sequence, step), and per message id in a tenant."""
    log = Export()
    log.lead("a")
    log.lead("b")
    log.queue("a", "m1", step=1)
    step_again = log.queue("a", "m2", step=1)
    id_again = log.queue("b", "m1", step=1)
    report = log.check()
    assert [(v.rule, v.global_position) for v in report.violations] == [
        (Rule.ONE_QUEUE_PER_STEP, step_again),
        (Rule.ONE_QUEUE_PER_MESSAGE, id_again),
    ]


def test_a_step_of_a_sequence_that_is_not_running_is_flagged():
    """An automated message belongs to the running sequence."""
    log = Export()
    log.lead("a")
    other = log.queue("a", "m1", step=1, sequence="warm-9")
    log.add("a", "SequenceStopped", MONDAY, reason="done")
    stopped = log.queue("a", "m2", step=1)
    assert [(v.rule, v.global_position) for v in log.check().violations] == [
        (Rule.SEQUENCE_NOT_RUNNING, other),
        (Rule.SEQUENCE_NOT_RUNNING, stopped),
    ]


def test_whatsapp_keeps_to_the_leads_assigned_phone():
    """A WhatsApp message goes on the phone the lead was assigned, and is sent from it."""
    log = Export()
    log.phone("p1")
    log.phone("p2")
    log.lead("a")
    unassigned = log.queue("a", "m0", channel="WHATSAPP", phone="p1")
    log.add("a", "PhoneAssigned", MONDAY, phone_id="p1")
    wrong = log.queue("a", "m1", channel="WHATSAPP", phone="p2")
    log.queue("a", "m2", channel="WHATSAPP", phone="p1")
    moved = log.send("a", "m2", channel="WHATSAPP", phone="p2")
    log.add("a", "PhoneAssigned", MONDAY, phone_id="p2", previous_phone_id="p1")
    log.queue("a", "m3", channel="WHATSAPP", phone="p2")
    assert [(v.rule, v.global_position) for v in log.check().violations] == [
        (Rule.STICKY_PHONE, unassigned),
        (Rule.STICKY_PHONE, wrong),
        (Rule.STICKY_PHONE, moved),
    ]


# -- LEGAL_TRANSITIONS -------------------------------------------------------------------------


def test_a_move_the_table_does_not_list_is_flagged():
    """COLD cannot jump to NEGOTIATION, and nothing leaves DEAD."""
    log = Export()
    log.lead("a")
    jump = log.move("a", "COLD", "NEGOTIATION")
    log.move("a", "NEGOTIATION", "DEAD")
    revive = log.move("a", "DEAD", "WARM_REPLY")
    assert [(v.rule, v.global_position) for v in log.check().violations] == [
        (Rule.LEGAL_TRANSITIONS, jump),
        (Rule.LEGAL_TRANSITIONS, revive),
    ]


def test_a_move_from_a_state_the_journey_is_not_in_is_flagged():
    """StateChanged.from_state must be the state the fold is in."""
    log = Export()
    log.lead("a")
    wrong = log.move("a", "CONTACTED_WA", "WARM_REPLY")
    report = log.check()
    assert [(v.rule, v.global_position) for v in report.violations] == [
        (Rule.LEGAL_TRANSITIONS, wrong)
    ]
    assert "was COLD" in report.violations[0].detail


def test_a_resume_returns_to_the_state_paused_from():
    """PAUSED goes back to where it was paused from, not elsewhere; it may also end (DEAD)."""
    log = Export()
    log.lead("a")
    log.move("a", "COLD", "CONTACTED_EMAIL")
    log.move("a", "CONTACTED_EMAIL", "PAUSED")
    wrong = log.move("a", "PAUSED", "CONTACTED_WA")
    log.lead("b")
    log.move("b", "COLD", "PAUSED")
    log.move("b", "PAUSED", "DEAD")
    assert [(v.rule, v.global_position) for v in log.check().violations] == [
        (Rule.LEGAL_TRANSITIONS, wrong)
    ]


# -- STREAM_ORDER and STREAM_START -------------------------------------------------------------


def test_versions_and_positions_must_count_up():
    """A version gap, a repeated version and a position going back are each flagged."""
    log = Export()
    log.lead("a")
    log.lead("b")
    log.add("a", "HumanTookControl", MONDAY, user="ana")
    log.rows[-1]["stream_version"] = 3  # a gap
    log.add("b", "HumanTookControl", MONDAY, user="ana")
    log.rows[-1]["global_position"] = 2  # back to an earlier position
    report = log.check()
    assert [(v.rule, v.global_position) for v in report.violations] == [
        (Rule.STREAM_ORDER, 2),
        (Rule.STREAM_ORDER, 3),
    ]
    assert "version 3 follows 1" in report.of_rule(Rule.STREAM_ORDER)[1].detail


def test_a_stream_must_start_with_its_registration():
    """Lead streams start with one LeadEnrolled, phone streams with PhoneRegistered."""
    log = Export()
    bare = log.add("a", "HumanTookControl", MONDAY, user="ana")
    log.lead("b")
    twice = log.lead("b")
    misplaced = log.add(
        "b",
        "PhoneStatusChanged",
        MONDAY,
        phone_id="p1",
        status="PAUSED",
        previous="ACTIVE",
        reason="x",
    )
    report = log.check()
    assert [(v.rule, v.global_position) for v in report.violations] == [
        (Rule.STREAM_START, bare),
        (Rule.STREAM_START, twice),
        (Rule.STREAM_START, misplaced),
    ]


def test_an_export_cut_short_is_reported_as_such():
    """A stream whose first exported event is not version 1 cannot be audited from its start."""
    log = Export()
    log.lead("a")
    log.add("a", "HumanTookControl", MONDAY, user="ana")
    report = check_export(log.rows[1:], hours=HOURS)
    assert rules_of(report) == [Rule.STREAM_ORDER]
    assert "not 1" in report.violations[0].detail


def test_event_types_this_code_does_not_know_are_counted_not_refused():
    """A newer writer's event type passes the stream checks and is counted in the summary."""
    log = Export()
    log.lead("a")
    log.add("a", "SomethingNew", MONDAY, anything=1)
    report = log.check()
    assert_clean(report)
    assert report.summary.unknown_event_types == {"SomethingNew": 1}


# -- DUPLICATE_PROVIDER_EVENT and SENTIMENT ----------------------------------------------------


def test_a_provider_event_recorded_twice_is_flagged():
    """The same reply, or the same delivery report of one message, is recorded once."""
    log = Export()
    log.lead("a", stop_on_reply=False)
    log.step_out("a", "m1", 1)
    log.add("a", "MessageDelivered", MONDAY, message_id="m1")
    delivered = log.add("a", "MessageDelivered", MONDAY, message_id="m1")
    log.add("a", "MessageBounced", MONDAY, message_id="m1", kind="soft")
    log.add("a", "MessageBounced", MONDAY, message_id="m1", kind="hard")  # another fact
    log.reply("a", external_id="r1")
    log.reply("a", external_id="r2")
    reply = log.reply("a", external_id="r1")
    assert [(v.rule, v.global_position) for v in log.check().violations] == [
        (Rule.DUPLICATE_PROVIDER_EVENT, delivered),
        (Rule.DUPLICATE_PROVIDER_EVENT, reply),
    ]


def scored(log: Export, score: int, triggers: list[str], confidence: float = 0.9) -> int:
    return log.add(
        "a",
        "SentimentScored",
        MONDAY,
        score=score,
        label="negative",
        confidence=confidence,
        triggers=triggers,
    )


def test_a_score_out_of_range_is_flagged():
    """Sentiment stays within -100..100 and confidence within 0..1."""
    log = Export()
    log.lead("a")
    score = scored(log, -101, [])
    confidence = scored(log, 0, [], confidence=1.5)
    assert [(v.rule, v.global_position) for v in log.check().violations] == [
        (Rule.SENTIMENT, score),
        (Rule.SENTIMENT, confidence),
    ]


def test_a_complaint_must_open_a_review():
    """A complaint or opt-out trigger without a ReviewRequested is flagged; with one, not."""
    log = Export()
    log.lead("a")
    complaint = scored(log, -80, ["COMPLAINT"])
    log.reply("a")
    handled = scored(log, -80, ["OPT_OUT"])
    log.add("a", "OptedOut", MONDAY, channel="ALL", source="reply keyword")
    log.add(
        "a",
        "ReviewRequested",
        MONDAY,
        review_id="rv1",
        reason="KEYWORD_TRIGGER",
        priority="HIGH",
        sla_due_at=MONDAY.isoformat(),
    )
    unanswered = scored(log, -80, ["COMPLAINT"])  # the export ends before its review
    report = log.check()
    assert [(v.rule, v.global_position) for v in report.violations] == [
        (Rule.SENTIMENT, complaint),
        (Rule.SENTIMENT, unanswered),
    ]
    assert handled not in [v.global_position for v in report.violations]


# -- reading lines -----------------------------------------------------------------------------


def test_jsonl_lines_round_trip_through_the_reader():
    """The rows of an export read back from JSON lines audit exactly like the rows."""
    log = valid_journey()
    lines = [msgspec.json.encode(r) + b"\n" for r in log.rows]
    lines.insert(3, b"\n")  # a blank line is skipped
    assert len(list(rows_from_jsonl(lines))) == len(log.rows)
    assert check_jsonl(lines, hours=HOURS) == log.check()


def test_a_line_that_is_not_json_is_named_with_line_and_column():
    """Bad JSON names its line and the column where the decoder stopped."""
    lines = [msgspec.json.encode(r).decode() for r in valid_journey().rows[:2]]
    lines.append('{"stream_id": "Bănățeană",, "x": 1}')
    with pytest.raises(MalformedExport) as caught:
        list(rows_from_jsonl(lines))
    # Byte 30 of the line; the column counts characters ("ă" and "ț" take two bytes each).
    assert (caught.value.line, caught.value.column) == (3, 27)
    assert str(caught.value).startswith("line 3, column 27: JSON is malformed")


def test_a_row_missing_a_field_or_with_bad_data_names_its_line():
    """A row without its envelope, or whose data does not fit its type, names the line."""
    rows = valid_journey().rows
    missing = [msgspec.json.encode(r).decode() for r in rows[:2]] + ['{"global_position": 3}']
    with pytest.raises(MalformedExport, match=r"^line 3: Object missing required field"):
        check_jsonl(missing, hours=HOURS)
    bad = dict(rows[2], data=dict(rows[2]["data"], channel="SMS"))
    lines = [msgspec.json.encode(r).decode() for r in [*rows[:2], bad]]
    with pytest.raises(MalformedExport) as caught:
        check_jsonl(lines, hours=HOURS)
    assert caught.value.line == 3
    assert "MessageQueued data" in str(caught.value)
    assert "$.channel" in str(caught.value)
    with pytest.raises(MalformedExport, match=r"^row 3, global position 3: MessageQueued data"):
        check_export([*rows[:2], bad], hours=HOURS)


# -- property: what the domain decides, the auditor accepts -----------------------------------


class AuditedJourney(JourneyMachine):
    """The journey specification's random sessions, audited through their export.

    Two things the domain leaves to other parts are pinned here, as the engine does them:
    time passes only into business hours (the scheduler and the guardian's job), and an
    out-of-office reply snoozes until a time after it (the webhook's `AUTO_REPLY_SNOOZE`).
    """

    @rule(delta=time_steps)
    def time_passes(self, delta):
        self.now = HOURS.next_open(self.now + delta)

    @rule(
        channel=outbound_channels,
        text=texts,
        out_of_office=st.booleans(),
        delta=st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=3)),
    )
    def reply_arrives(self, channel, text, out_of_office, delta):
        JourneyMachine.reply_arrives(self, channel, text, out_of_office, delta)

    @invariant()
    def the_export_passes_the_audit(self):
        """Every invariant the auditor checks holds for a log `decide` wrote."""
        log = Export()
        for phone in ("phone-1", "phone-2", "phone-3"):
            event = PhoneRegistered(
                event_id=phone,
                tenant_id="t1",
                phone_id=phone,
                occurred_at=MONDAY - timedelta(days=30),
                number="+40722123456",
                daily_limit=200,
                status=PhoneStatus.ACTIVE,
            )
            log.add(phone_stream(phone), "PhoneRegistered", event.occurred_at, **export_data(event))
        for event in self.events:
            data = msgspec.json.decode(msgspec.json.encode(export_data(event)))
            log.add(event.lead_id, event_type_name(event), event.occurred_at, **data)
        assert_clean(log.check())


TestAuditedJourney = AuditedJourney.TestCase
