"""Each read model on concrete journeys: what a reader of the table sees after each step."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cerniq_outreach.adapters.clock import SimulatedClock
from cerniq_outreach.adapters.quota.memory import MemoryQuotaGuardian
from cerniq_outreach.application.phone_pool import PhonePool
from cerniq_outreach.application.projections import (
    ACTIVITY_FEED,
    ALL_PROJECTIONS,
    FOLLOWER_PROJECTIONS,
    INLINE_PROJECTIONS,
    JOURNEY,
    PROJECTIONS,
    UnknownProjection,
    iso,
    projections_named,
    scrub_lead,
    search_key,
    search_pattern,
)
from cerniq_outreach.application.projections.activity_feed import summary
from cerniq_outreach.application.replay import verify
from cerniq_outreach.domain import commands as c
from cerniq_outreach.domain.enums import (
    BounceKind,
    Channel,
    JourneyState,
    OptOutScope,
    Priority,
    ReplyTrigger,
    ReviewReason,
    ReviewResolution,
    SentimentLabel,
)
from cerniq_outreach.domain.events import Company

from projection_support import T0, World, rows, sqlite_read_models

S = JourneyState


def journey(world: World, lead: str = "lead-1", tenant: str = "t1") -> dict:
    [row] = rows(world.db, "gold_lead_journey", tenant, lead_id=lead)
    return row


def message(world: World, message_id: str) -> dict:
    [row] = rows(world.db, "gold_communication_log", message_id=message_id)
    return row


# --- gold_lead_journey ----------------------------------------------------------------------


def test_enrolment_creates_the_lead_row_with_company_and_search_text():
    """LeadEnrolled writes one COLD row with the company, its contact and a search key."""
    world = World()
    world.lead()
    row = journey(world)
    assert row["company_name"] == "Ferma Bănățeană SRL"
    assert (row["fiscal_code"], row["county"]) == ("RO123456", "Timiș")
    assert (row["contact_name"], row["phone"], row["email"]) == (
        "Ion Popescu",
        "+40722123456",
        "ion@ferma.ro",
    )
    assert row["stage"] == "COLD"
    assert row["sequence_id"] == "cold"
    assert row["sequence_active"] == 1
    assert row["stream_version"] == 1
    assert row["enrolled_at"] == row["updated_at"] == iso(T0)
    assert row["next_action_at"] is None  # the scheduler's to fill
    assert "banateana" in row["search_text"]


def test_whatsapp_send_records_contact_phone_and_stage():
    """A sent WhatsApp message: phone assigned, CONTACTED_WA, last contact and channel."""
    world = World()
    lead = world.lead()
    lead.queue("m1")
    lead.wait(minutes=5)
    lead.send("m1")
    row = journey(world)
    assert row["assigned_phone_id"] == "phone-1"
    assert row["stage"] == "CONTACTED_WA"
    assert row["stage_changed_at"] == iso(lead.now)
    assert row["last_contact_at"] == row["first_contact_at"] == iso(lead.now)
    assert row["last_channel"] == "WHATSAPP"
    assert row["messages_sent"] == 1
    assert row["current_step"] == 1
    assert row["stream_version"] == lead.state.version


def test_reply_stops_the_sequence_and_marks_the_lead_warm():
    """A reply: has_reply, one more reply, WARM_REPLY, sequence no longer active."""
    world = World()
    lead = world.lead()
    lead.queue("m1")
    lead.send("m1")
    lead.wait(hours=2)
    lead.do(
        c.ReceiveReply, channel=Channel.WHATSAPP, external_id="in-1", text="Da", content_hash="h"
    )
    row = journey(world)
    assert row["has_reply"] == 1
    assert row["reply_count"] == 1
    assert row["last_reply_at"] == iso(lead.now)
    assert row["stage"] == "WARM_REPLY"
    assert row["sequence_active"] == 0


def test_negative_reply_opens_a_review_and_resolution_closes_it():
    """needs_review follows the open reviews; the sentiment score and label are kept."""
    world = World()
    lead = world.lead()
    lead.do(
        c.ScoreSentiment, score=-80, label=SentimentLabel.NEGATIVE, confidence=0.9, triggers=set()
    )
    row = journey(world)
    assert (row["sentiment_score"], row["sentiment_label"]) == (-80, "negative")
    assert (row["needs_review"], row["open_reviews"]) == (1, 1)
    [review_id] = lead.state.open_reviews
    lead.do(
        c.ResolveReview,
        review_id=review_id,
        resolution=ReviewResolution.DISMISSED,
        resolved_by="ana",
    )
    row = journey(world)
    assert (row["needs_review"], row["open_reviews"]) == (0, 0)


def test_opt_out_of_all_sets_every_flag_and_ends_the_journey():
    """OptedOut ALL silences every channel; the journey is DEAD."""
    world = World()
    lead = world.lead()
    lead.do(c.OptOut, scope=OptOutScope.ALL, source="reply keyword")
    row = journey(world)
    assert (row["opted_out_whatsapp"], row["opted_out_email"], row["opted_out_all"]) == (1, 1, 1)
    assert row["stage"] == "DEAD"


def test_opt_out_of_one_channel_sets_only_its_flag():
    """OptedOut WHATSAPP leaves email open."""
    world = World()
    lead = world.lead()
    lead.do(c.OptOut, scope=OptOutScope.WHATSAPP, source="link")
    row = journey(world)
    assert (row["opted_out_whatsapp"], row["opted_out_email"], row["opted_out_all"]) == (1, 0, 0)


def test_pause_remembers_where_from_and_resume_forgets_it():
    """paused_from is the stage a pause left, and is cleared when the journey resumes."""
    world = World()
    lead = world.lead()
    lead.queue("m1")
    lead.send("m1")
    lead.do(c.Pause, by="ana")
    row = journey(world)
    assert (row["stage"], row["paused_from"]) == ("PAUSED", "CONTACTED_WA")
    lead.do(c.Resume, by="ana")
    row = journey(world)
    assert (row["stage"], row["paused_from"]) == ("CONTACTED_WA", None)


def test_human_control_is_shown_and_released():
    """human_controlled_by names the person who took over, until they hand back."""
    world = World()
    lead = world.lead()
    lead.do(c.TakeControl, user="mihai")
    assert journey(world)["human_controlled_by"] == "mihai"
    lead.do(c.ReleaseControl, user="mihai")
    assert journey(world)["human_controlled_by"] is None


def test_hard_email_bounce_marks_the_address_invalid():
    """A hard bounce of an email kills the email address, not the WhatsApp number."""
    world = World()
    lead = world.lead()
    lead.queue("e1", Channel.EMAIL_COLD)
    lead.send("e1")
    lead.do(c.RecordBounce, message_id="e1", kind=BounceKind.HARD)
    row = journey(world)
    assert (row["email_invalid"], row["whatsapp_invalid"]) == (1, 0)
    assert message(world, "e1")["bounce_kind"] == "hard"


def test_the_same_event_applied_twice_changes_nothing():
    """The journey projection is idempotent: a second application is a no-op."""
    world = World()
    lead = world.lead()
    lead.queue("m1")
    lead.send("m1")
    before = rows(world.db, "gold_lead_journey"), rows(world.db, "gold_communication_log")
    for record in world.store.read_stream("t1", "lead-1"):
        with world.db.transaction() as tx:
            JOURNEY.apply(tx, record)
    after = rows(world.db, "gold_lead_journey"), rows(world.db, "gold_communication_log")
    assert after == before


def test_an_event_out_of_order_is_not_applied():
    """Version v lands only on a row at v - 1: an event from the future is ignored."""
    world = World()
    lead = world.lead()
    lead.queue("m1")
    lead.send("m1")
    records = world.store.read_stream("t1", "lead-1")
    other = sqlite_read_models()
    with other.transaction() as tx:
        JOURNEY.apply(tx, records[0])
        JOURNEY.apply(tx, records[-1])  # skips the versions in between
    [row] = rows(other, "gold_lead_journey")
    assert row["stream_version"] == 1
    assert row["messages_sent"] == 0


def test_tenants_do_not_share_rows():
    """The same lead id in two tenants is two journeys."""
    world = World()
    world.lead(tenant="t1")
    other = world.lead(tenant="t2")
    other.do(c.Pause, by="ana")
    assert journey(world, tenant="t1")["stage"] == "COLD"
    assert journey(world, tenant="t2")["stage"] == "PAUSED"


# --- gold_communication_log -----------------------------------------------------------------


def test_message_row_follows_its_status_without_going_back():
    """QUEUED -> SENT -> READ; a late DELIVERED keeps READ but records its time."""
    world = World()
    lead = world.lead()
    lead.queue("m1")
    row = message(world, "m1")
    assert (row["status"], row["direction"], row["channel"]) == ("QUEUED", "OUTBOUND", "WHATSAPP")
    assert (row["quota_cost"], row["phone_id"], row["template_id"]) == (1, "phone-1", "tpl-1")
    assert row["content_hash"] == "h-m1"
    lead.wait(minutes=1)
    lead.send("m1")
    assert message(world, "m1")["external_id"] == "x-m1"
    lead.wait(minutes=1)
    lead.do(c.RecordRead, message_id="m1")
    read_at = iso(lead.now)
    lead.wait(minutes=1)
    lead.do(c.RecordDelivered, message_id="m1")
    row = message(world, "m1")
    assert row["status"] == "READ"
    assert row["read_at"] == read_at
    assert row["delivered_at"] == iso(lead.now)
    assert row["status"] == lead.state.messages["m1"].status.value


def test_reply_adds_an_inbound_row_and_marks_the_latest_message_replied():
    """The reply is logged with its preview; the latest WhatsApp message becomes REPLIED."""
    world = World()
    lead = world.lead()
    lead.queue("m1")
    lead.send("m1")
    lead.wait(hours=1)
    lead.queue("m2", step=2)
    lead.send("m2")
    lead.do(
        c.ReceiveReply,
        channel=Channel.WHATSAPP,
        external_id="in-1",
        text="Sună-mă",
        content_hash="h",
    )
    inbound = rows(world.db, "gold_communication_log", direction="INBOUND")
    assert [(r["preview"], r["external_id"], r["status"]) for r in inbound] == [
        ("Sună-mă", "in-1", "RECEIVED")
    ]
    assert message(world, "m2")["status"] == "REPLIED"
    assert message(world, "m1")["status"] == "SENT"


def test_failed_and_cancelled_messages_say_so():
    """A provider failure keeps its reason; a cancelled message is CANCELLED."""
    world = World()
    lead = world.lead()
    lead.queue("m1")
    lead.do(c.RecordFailure, message_id="m1", reason="timeout", permanent=False)
    row = message(world, "m1")
    assert (row["status"], row["failure_reason"], row["permanent_failure"]) == (
        "FAILED",
        "timeout",
        0,
    )
    lead.queue("e1", Channel.EMAIL_COLD, step=2)
    lead.do(c.CancelMessage, message_id="e1", reason="window closed")
    assert message(world, "e1")["status"] == "CANCELLED"


# --- human_review_queue ---------------------------------------------------------------------


def test_review_queue_opens_and_resolves_items():
    """An item is OPEN with its priority rank and SLA, then RESOLVED with who and how."""
    world = World()
    lead = world.lead()
    lead.do(c.RequestReview, reason=ReviewReason.MANUAL_FLAG, priority=Priority.URGENT)
    [item] = rows(world.db, "human_review_queue")
    assert (item["status"], item["priority"], item["priority_rank"]) == ("OPEN", "URGENT", 3)
    assert item["sla_due_at"] == iso(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    assert item["lead_id"] == "lead-1"
    lead.wait(minutes=30)
    lead.do(
        c.ResolveReview,
        review_id=item["review_id"],
        resolution=ReviewResolution.TAKEN_OVER,
        resolved_by="ana",
    )
    [item] = rows(world.db, "human_review_queue")
    assert (item["status"], item["resolution"], item["resolved_by"]) == (
        "RESOLVED",
        "TAKEN_OVER",
        "ana",
    )
    assert item["resolved_at"] == iso(lead.now)


# --- wa_quota_usage -------------------------------------------------------------------------


def test_quota_usage_counts_new_contacts_and_follow_ups_per_phone_and_day():
    """First messages cost a new contact, later ones are follow-ups, on the phone's day."""
    world = World()
    a, b = world.lead("a"), world.lead("b")
    for lead in (a, b):
        lead.queue(f"{lead.lead_id}-1")
        lead.send(f"{lead.lead_id}-1")
    a.wait(hours=3)
    a.queue("a-2", step=2)
    a.send("a-2")
    world.project()
    [day] = rows(world.db, "wa_quota_usage")
    assert (day["phone_id"], day["usage_date"]) == ("phone-1", "2026-03-02")
    assert (day["new_contacts"], day["follow_ups"]) == (2, 1)
    assert day["first_message_at"] == iso(T0)
    assert day["last_message_at"] == iso(a.now)


def test_quota_day_is_the_bucharest_calendar_day():
    """A send at 22:30 UTC in summer is already the next day in Bucharest (UTC+3)."""
    world = World()
    lead = world.lead(at=datetime(2026, 7, 6, 22, 30, tzinfo=UTC))
    lead.queue("m1")
    lead.send("m1")
    world.project()
    [day] = rows(world.db, "wa_quota_usage")
    assert day["usage_date"] == "2026-07-07"


def test_email_sends_do_not_count_whatsapp_quota():
    """Only WhatsApp sends are quota."""
    world = World()
    lead = world.lead()
    lead.queue("e1", Channel.EMAIL_COLD)
    lead.send("e1")
    world.project()
    assert rows(world.db, "wa_quota_usage") == []


# --- outreach_daily_stats -------------------------------------------------------------------


def test_daily_stats_count_message_facts_per_channel_and_lead_facts_under_all():
    """Sends, deliveries and replies per channel; enrolments, reviews and outcomes under ALL."""
    world = World()
    lead = world.lead()
    lead.queue("m1")
    lead.send("m1")
    lead.do(c.RecordDelivered, message_id="m1")
    lead.do(
        c.ReceiveReply, channel=Channel.WHATSAPP, external_id="i", text="STOP", content_hash="h"
    )
    lead.do(
        c.ScoreSentiment,
        score=-90,
        label=SentimentLabel.NEGATIVE,
        confidence=0.95,
        triggers={ReplyTrigger.OPT_OUT},
    )
    world.project()
    by_channel = {r["channel"]: r for r in rows(world.db, "outreach_daily_stats")}
    wa, lead_level = by_channel["WHATSAPP"], by_channel["ALL"]
    assert (wa["queued"], wa["sent"], wa["new_contacts"], wa["delivered"], wa["replied"]) == (
        1,
        1,
        1,
        1,
        1,
    )
    assert (lead_level["enrolled"], lead_level["opted_out"], lead_level["dead"]) == (1, 1, 1)
    assert lead_level["reviews_opened"] == 1
    assert {r["stat_date"] for r in by_channel.values()} == {"2026-03-02"}


# --- activity_feed --------------------------------------------------------------------------


def test_activity_feed_has_a_line_per_event_and_no_personal_data():
    """One line per event, in log order; names, phone, email and reply text never appear."""
    world = World()
    lead = world.lead()
    lead.queue("m1")
    lead.send("m1")
    lead.do(
        c.ReceiveReply,
        channel=Channel.WHATSAPP,
        external_id="i",
        text="Ion aici, sunați la 0722123456",
        content_hash="h",
    )
    world.project()
    feed = rows(world.db, "activity_feed")
    assert len(feed) == len(lead.events)
    assert sorted(r["event_type"] for r in feed) == sorted(type(e).__name__ for e in lead.events)
    text = " ".join(r["summary"] for r in feed)
    for secret in ("Ion", "Popescu", "0722123456", "ion@ferma.ro", "Bănățeană", "sunați"):
        assert secret not in text


def test_every_event_type_has_a_summary_of_its_own():
    """The feed says what happened for each event type (no bare type names)."""
    world = World()
    lead = world.lead()
    lead.queue("m1")
    lead.send("m1")
    lead.do(c.Pause, by="ana")
    assert all(summary(e) != type(e).__name__ for e in lead.events)


# --- erasure, search, registry --------------------------------------------------------------


def test_scrub_lead_nulls_personal_columns_and_keeps_the_shape():
    """Erasure leaves who-was-contacted-when and removes who they were."""
    world = World()
    lead = world.lead()
    lead.queue("m1")
    lead.send("m1")
    lead.do(c.ReceiveReply, channel=Channel.WHATSAPP, external_id="i", text="Da", content_hash="h")
    with world.db.transaction() as tx:
        assert scrub_lead(tx, "t1", "lead-1") == 2
    row = journey(world)
    assert [row[k] for k in ("company_name", "contact_name", "phone", "email", "search_text")] == [
        None
    ] * 5
    assert (row["stage"], row["messages_sent"], row["fiscal_code"]) == ("WARM_REPLY", 1, "RO123456")
    assert all(r["preview"] is None for r in rows(world.db, "gold_communication_log"))


def test_replay_after_erasure_equals_the_scrubbed_read_model():
    """With the lead's key destroyed and its rows scrubbed, a rebuild finds no difference."""
    world = World()
    lead = world.lead()
    lead.do(
        c.ReceiveReply, channel=Channel.EMAIL_COLD, external_id="i", text="Nu", content_hash="h"
    )
    world.project()
    world.vault.destroy_key("t1", "lead-1")
    with world.db.transaction() as tx:
        scrub_lead(tx, "t1", "lead-1")
    assert verify(world.store, world.db, ALL_PROJECTIONS, scratch=sqlite_read_models()) == []


def test_search_matches_without_case_or_diacritics():
    """'banateana' and 'ION' find 'Ferma Bănățeană SRL' / 'Ion Popescu' via one LIKE."""
    world = World()
    world.lead("a")
    world.lead("b", company=Company(name="Cereale Nord SA", email="office@cereale.ro"))
    sql = "SELECT lead_id FROM gold_lead_journey WHERE search_text LIKE :p ESCAPE '\\'"
    with world.db.transaction() as tx:
        for query, expected in (("banateana", "a"), ("ION", "a"), ("Cereale", "b")):
            found = tx.fetchall(sql, {"p": search_pattern(query)})
            assert [r["lead_id"] for r in found] == [expected], query
        assert tx.fetchall(sql, {"p": search_pattern("100%")}) == []
    assert search_key(None, "") is None


def test_registry_names_every_projection_once():
    """Inline and follower projections are disjoint and all are found by name."""
    assert set(INLINE_PROJECTIONS).isdisjoint(FOLLOWER_PROJECTIONS)
    assert set(PROJECTIONS) == {p.name for p in ALL_PROJECTIONS}
    assert projections_named(["activity_feed"]) == (ACTIVITY_FEED,)
    assert projections_named(None) == ALL_PROJECTIONS
    with pytest.raises(UnknownProjection, match="known: activity_feed"):
        projections_named(["nope"])


def test_every_projection_declares_keys_for_all_its_tables():
    """Verify pairs rows by these keys; a table without one would compare as whole rows."""
    for projection in ALL_PROJECTIONS:
        assert set(projection.keys) == set(projection.tables), projection.name


def test_the_lead_read_models_ignore_phone_events():
    """A phone's events fill wa_phone_numbers only: no lead row, feed line, stat or count."""
    world = World()
    pool = PhonePool(world.store, world.db, MemoryQuotaGuardian(), SimulatedClock(T0, speed=0))
    phone = pool.add("t1", "+40722123456")
    pool.record_health_check("t1", phone.phone_id, connected=False)
    world.project()
    assert [r["phone_number"] for r in rows(world.db, "wa_phone_numbers")] == ["+40722123456"]
    for projection in ALL_PROJECTIONS:
        for table in projection.tables:
            if table != "wa_phone_numbers":
                assert rows(world.db, table) == [], table
    assert verify(world.store, world.db, ALL_PROJECTIONS, scratch=sqlite_read_models()) == []
