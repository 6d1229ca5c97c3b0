"""`migrate`, `events export` and `audit lead` against real databases, through the CLI."""

from __future__ import annotations

import itertools
import os
import sqlite3
from datetime import UTC, datetime, timedelta

import msgspec
import psycopg
import pytest
from click.testing import CliRunner

from cerniq_outreach.adapters.migrations import migration_files
from cerniq_outreach.bootstrap import open_event_store
from cerniq_outreach.domain import commands as c
from cerniq_outreach.domain.decide import decide
from cerniq_outreach.domain.enums import Channel, JourneyState, SentimentLabel
from cerniq_outreach.domain.events import Company
from cerniq_outreach.domain.journey import Journey, replay
from cerniq_outreach.entrypoints.cli import main
from cerniq_outreach.entrypoints.cli.event_log import EXPORT_KEYS
from cerniq_outreach.settings import Settings

import services

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
CONFIG_PREFIXES = ("CERNIQ_", "TIMELINESAI_", "INSTANTLY_", "RESEND_")
PERSONAL_VALUES = ("Agro Verde SRL", "+40722123456", "ion@agroverde.ro", "Ion Popescu")
REPLY = "Bună ziua, suntem interesați. Ion"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Run each test with none of the developer's own configuration variables."""
    for name in [n for n in os.environ if n.startswith(CONFIG_PREFIXES)]:
        monkeypatch.delenv(name)


def cli(url: str, *args: str):
    env = {"CERNIQ_DATABASE_URL": url, "CERNIQ_LOG_FORMAT": "json"}
    return CliRunner(env=env).invoke(main, list(args), prog_name="cerniq-outreach")


def journey(tenant: str, lead: str, start: datetime = T0) -> list[list]:
    """A lead's journey as the batches `decide` makes: enrolled, contacted, replied, negotiating."""
    steps = [
        (
            c.Enroll,
            {
                "tenant_id": tenant,
                "lead_id": lead,
                "sequence_id": "cold",
                "company": Company(
                    name="Agro Verde SRL",
                    phone="+40722123456",
                    email="ion@agroverde.ro",
                    contact_name="Ion Popescu",
                    county="Iași",
                ),
            },
        ),
        (
            c.QueueMessage,
            {
                "message_id": f"{lead}-m1",
                "channel": Channel.WHATSAPP,
                "content_hash": "h1",
                "sequence_id": "cold",
                "step": 1,
                "template_id": "intro",
                "template_version": 1,
                "quota_cost": 1,
                "phone_id": "phone-1",
            },
        ),
        (c.RecordSent, {"message_id": f"{lead}-m1", "provider": "timelinesai", "external_id": "x"}),
        (c.RecordDelivered, {"message_id": f"{lead}-m1"}),
        (
            c.ReceiveReply,
            {"channel": Channel.WHATSAPP, "external_id": "r", "text": REPLY, "content_hash": "r1"},
        ),
        (c.ScoreSentiment, {"score": 70, "label": SentimentLabel.POSITIVE, "confidence": 0.9}),
        (c.Transition, {"to": JourneyState.NEGOTIATION, "reason": "wants an offer", "by": "ana"}),
    ]
    state, batches = Journey(), []
    for i, (cls, fields) in enumerate(steps):
        command = cls(command_id=f"{tenant}-{lead}-{i}", at=start + timedelta(minutes=i), **fields)
        batch = decide(state, command)
        state = replay(batch, state)
        batches.append(batch)
    return batches


def append_journeys(url: str, *leads: tuple[str, str]) -> None:
    """Append the journeys of `leads` ((tenant, lead) pairs) interleaved, as live traffic is."""
    journeys = {key: journey(*key) for key in leads}
    versions = dict.fromkeys(leads, 0)
    with open_event_store(Settings(database_url=url)) as log:
        for step in range(max(len(j) for j in journeys.values())):
            for (tenant, lead), batches in journeys.items():
                if step < len(batches):
                    result = log.store.append(
                        tenant, lead, batches[step], expected_version=versions[(tenant, lead)]
                    )
                    versions[(tenant, lead)] = result.stream_version


def export(url: str, *args: str) -> list[dict]:
    result = cli(url, "events", "export", *args)
    assert result.exit_code == 0, result.stderr
    return [msgspec.json.decode(line) for line in result.stdout.splitlines()]


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'cerniq.db'}"


@pytest.fixture
def populated(sqlite_url):
    """A migrated SQLite store holding two leads of t1 and one of t2, appended interleaved."""
    assert cli(sqlite_url, "migrate").exit_code == 0
    append_journeys(sqlite_url, ("t1", "lead-1"), ("t1", "lead-2"), ("t2", "lead-3"))
    return sqlite_url


# --- migrate --------------------------------------------------------------------------------


def test_migrate_applies_every_migration_then_is_up_to_date(sqlite_url):
    """The first run applies each migration in order; the second changes nothing."""
    first = cli(sqlite_url, "migrate")
    assert first.exit_code == 0, first.stderr
    versions = [p.stem for p in migration_files("sqlite")]
    assert first.stdout.splitlines() == [f"applied {v}" for v in versions]
    second = cli(sqlite_url, "migrate")
    assert second.exit_code == 0
    assert second.stdout.splitlines() == ["up to date"]


# --- events export --------------------------------------------------------------------------


def test_export_prints_the_documented_keys_in_global_order(populated):
    """One JSON object a line, exactly the contract's keys in order, positions ascending."""
    lines = export(populated)
    assert len(lines) == 3 * 11
    assert all(list(line) == list(EXPORT_KEYS) for line in lines)
    positions = [line["global_position"] for line in lines]
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)
    # Interleaved appends: the global order mixes the streams, each in its own version order.
    assert [line["stream_id"] for line in lines[:3]] == ["lead-1", "lead-2", "lead-3"]
    for lead in ("lead-1", "lead-2", "lead-3"):
        versions = [line["stream_version"] for line in lines if line["stream_id"] == lead]
        assert versions == list(range(1, 12))


def test_export_data_is_the_event_without_its_envelope(populated):
    """`data` holds the event's own fields; ids and times live in the line itself."""
    first = export(populated, "--stream", "lead-1")[0]
    assert first["event_type"] == "LeadEnrolled"
    assert first["occurred_at"].startswith("2026-03-02T08:00:00")
    assert not {"type", "event_id", "tenant_id", "lead_id", "occurred_at"} & set(first["data"])
    assert first["data"]["sequence_id"] == "cold"
    assert first["data"]["company"]["name"] == "Agro Verde SRL"  # personal data in clear


def test_export_filters_by_tenant_stream_position_and_time(populated):
    """--tenant, --stream, --from-position and --until each narrow the export."""
    everything = export(populated)
    assert {line["tenant_id"] for line in export(populated, "--tenant", "t2")} == {"t2"}
    assert {line["stream_id"] for line in export(populated, "--stream", "lead-2")} == {"lead-2"}
    start = everything[10]["global_position"]
    assert export(populated, "--from-position", str(start)) == everything[10:]
    until = export(populated, "--until", "2026-03-02T10:01:00+02:00")  # 08:01 UTC, inclusive
    limit = datetime(2026, 3, 2, 8, 1, tzinfo=UTC)
    assert until == [
        line for line in everything if datetime.fromisoformat(line["occurred_at"]) <= limit
    ]
    assert len(until) == 9
    assert {line["event_type"] for line in until} == {
        "LeadEnrolled",
        "PhoneAssigned",
        "MessageQueued",
    }


def test_redact_hides_every_personal_value(populated):
    """With --redact no name, phone, email or reply text appears; the rest is unchanged."""
    result = cli(populated, "events", "export", "--redact")
    assert result.exit_code == 0
    for value in (*PERSONAL_VALUES, REPLY):
        assert value not in result.stdout
    lines = [msgspec.json.decode(line) for line in result.stdout.splitlines()]
    enrolled = next(line for line in lines if line["event_type"] == "LeadEnrolled")
    assert enrolled["data"]["company"] == {
        "name": "[redacted]",
        "fiscal_code": None,
        "county": "Iași",
        "phone": "[redacted]",
        "email": "[redacted]",
        "contact_name": "[redacted]",
    }
    reply = next(line for line in lines if line["event_type"] == "ReplyReceived")
    assert reply["data"]["text_preview"] == "[redacted]"
    unredacted = export(populated)
    assert [line["global_position"] for line in lines] == [
        line["global_position"] for line in unredacted
    ]


def test_after_the_key_is_destroyed_export_shows_erased(populated):
    """Crypto-shredding one lead: its personal fields read "[erased]", other leads' do not."""
    with open_event_store(Settings(database_url=populated)) as log:
        assert log.vault.destroy_key("t1", "lead-1") is True
    erased = export(populated, "--stream", "lead-1", "--tenant", "t1")
    enrolled = next(line for line in erased if line["event_type"] == "LeadEnrolled")
    assert enrolled["data"]["company"]["name"] == "[erased]"
    assert enrolled["data"]["company"]["phone"] == "[erased]"
    assert enrolled["data"]["company"]["county"] == "Iași"  # not personal: kept
    reply = next(line for line in erased if line["event_type"] == "ReplyReceived")
    assert reply["data"]["text_preview"] == "[erased]"
    assert len(erased) == 11  # the history keeps its shape
    redacted = export(populated, "--stream", "lead-1", "--tenant", "t1", "--redact")
    assert redacted[0]["data"]["company"]["name"] == "[erased]"
    other = export(populated, "--stream", "lead-2")
    assert other[0]["data"]["company"]["name"] == "Agro Verde SRL"


def test_the_event_log_holds_no_personal_value_in_clear(populated):
    """Personal fields are sealed before they are stored: no event row shows them.

    (The read models hold them in clear on purpose, for the API; erasure scrubs those.)
    """
    with sqlite3.connect(populated.removeprefix("sqlite:///")) as conn:
        rows = conn.execute("SELECT event_type, data, sealed FROM events").fetchall()
    assert {row[0] for row in rows} >= {"LeadEnrolled", "ReplyReceived"}
    stored = b"".join(row[1].encode() + (row[2] or b"") for row in rows)
    for value in (*PERSONAL_VALUES, REPLY):
        assert value.encode() not in stored


# --- audit lead -----------------------------------------------------------------------------


def test_audit_json_chains_each_events_state_before_and_after(populated):
    """Every event comes with the state before and after it; each after is the next before."""
    result = cli(populated, "audit", "lead", "lead-2", "--format", "json")
    assert result.exit_code == 0, result.stderr
    audit = msgspec.json.decode(result.stdout)
    assert (audit["tenant_id"], audit["lead_id"]) == ("t1", "lead-2")
    steps = audit["events"]
    assert [s["stream_version"] for s in steps] == list(range(1, 12))
    assert steps[0]["event_type"] == "LeadEnrolled"
    assert steps[0]["before"]["stage"] == "COLD"
    assert not steps[0]["before"]["sequence_active"]
    assert steps[0]["after"]["sequence_active"]
    for earlier, later in itertools.pairwise(steps):
        assert earlier["after"] == later["before"]
    moves = [
        (s["before"]["stage"], s["after"]["stage"]) for s in steps if s["before"] != s["after"]
    ]
    assert ("COLD", "CONTACTED_WA") in moves
    assert ("CONTACTED_WA", "WARM_REPLY") in moves
    assert ("WARM_REPLY", "NEGOTIATION") in moves
    assert audit["final"]["stage"] == "NEGOTIATION"
    sent = next(s for s in steps if s["event_type"] == "MessageSent")
    assert sent["summary"] == "WHATSAPP message lead-2-m1 sent via timelinesai (x)"


def test_audit_table_shows_every_event_and_each_stage_change(populated):
    """The table lists the events in order with the stage moves they caused."""
    result = cli(populated, "audit", "lead", "lead-1")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "lead lead-1 (tenant t1): 11 events" in out
    for event_type in ("LeadEnrolled", "PhoneAssigned", "MessageSent", "ReplyReceived"):
        assert event_type in out
    assert out.index("LeadEnrolled") < out.index("MessageSent") < out.index("ReplyReceived")
    assert "COLD -> CONTACTED_WA" in out
    assert "WARM_REPLY -> NEGOTIATION" in out
    assert "now: NEGOTIATION" in out


def test_audit_of_an_unknown_lead_exits_1(populated):
    """A lead the log has never heard of is an input error with a clear message."""
    result = cli(populated, "audit", "lead", "no-such-lead")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "no lead no-such-lead" in result.stderr


def test_audit_asks_for_the_tenant_when_two_tenants_share_a_lead_id(populated):
    """The same lead id in two tenants is two people: the audit does not mix them."""
    append_journeys(populated, ("t2", "lead-1"))
    ambiguous = cli(populated, "audit", "lead", "lead-1", "--format", "json")
    assert ambiguous.exit_code == 1
    assert "--tenant" in ambiguous.stderr
    chosen = cli(populated, "audit", "lead", "lead-1", "--tenant", "t2", "--format", "json")
    assert chosen.exit_code == 0
    assert msgspec.json.decode(chosen.stdout)["tenant_id"] == "t2"


# --- replay ---------------------------------------------------------------------------------


def test_replay_rebuilds_the_read_models_and_verify_then_agrees(populated):
    """After a rebuild from the log, --verify finds the live read models equal to the log."""
    rebuilt = cli(populated, "replay")
    assert rebuilt.exit_code == 0, rebuilt.stderr
    assert rebuilt.stdout.startswith("rebuilt ")
    assert "from 33 events" in rebuilt.stdout
    verified = cli(populated, "replay", "--verify")
    assert verified.exit_code == 0, verified.stderr
    assert "match the log" in verified.stdout


def test_verify_exits_1_when_a_read_model_row_was_corrupted(populated):
    """A live row that disagrees with the log fails --verify, named; a replay repairs it."""
    # The follower read models have no projector running here: bring them up to date so
    # that the only difference left is the one made below.
    assert cli(populated, "replay").exit_code == 0
    assert cli(populated, "replay", "--verify").exit_code == 0
    with sqlite3.connect(populated.removeprefix("sqlite:///")) as conn:
        changed = conn.execute(
            "UPDATE gold_lead_journey SET stage = 'CONVERTED'"
            " WHERE tenant_id = 't1' AND lead_id = 'lead-2'"
        ).rowcount
    assert changed == 1
    verified = cli(populated, "replay", "--verify")
    assert verified.exit_code == 1
    expected = "gold_lead_journey [tenant_id='t1', lead_id='lead-2'] stage: live 'CONVERTED'"
    assert verified.stdout.splitlines() == [f"{expected}, rebuilt 'NEGOTIATION'"]
    assert "1 difference between the read models and the log" in verified.stderr
    # Only t2's rows compared: t1's corruption is not t2's difference.
    assert cli(populated, "replay", "--verify", "--tenant", "t2").exit_code == 0
    assert cli(populated, "replay", "--projection", "journey", "--tenant", "t1").exit_code == 0
    assert cli(populated, "replay", "--verify").exit_code == 0


def test_replay_of_an_unknown_projection_is_a_usage_error(populated):
    """A projection name that does not exist exits 2 and lists the known ones."""
    result = cli(populated, "replay", "--projection", "no_such_model")
    assert result.exit_code == 2
    assert "unknown projection 'no_such_model'" in result.stderr
    assert "journey" in result.stderr


# --- PostgreSQL -----------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_migrate_is_idempotent_and_export_reads_every_tenant(postgres_server_url):
    """On PostgreSQL too: migrate twice, append as the app role, export across tenants."""
    with services.fresh_database(postgres_server_url) as url:
        first = cli(url, "migrate")
        assert first.exit_code == 0, first.stderr
        versions = [p.stem for p in migration_files("postgres")]
        assert first.stdout.splitlines() == [f"applied {v}" for v in versions]
        assert cli(url, "migrate").stdout.splitlines() == ["up to date"]

        append_journeys(url, ("t1", "lead-1"), ("t2", "lead-2"))
        lines = export(url)
        assert [list(line) for line in lines] == [list(EXPORT_KEYS)] * 22
        assert {line["tenant_id"] for line in lines} == {"t1", "t2"}
        positions = [line["global_position"] for line in lines]
        assert positions == sorted(positions)
        assert lines[0]["data"]["company"]["contact_name"] == "Ion Popescu"

        redacted = cli(url, "events", "export", "--tenant", "t2", "--redact")
        assert redacted.exit_code == 0
        assert "Ion Popescu" not in redacted.stdout
        assert len(redacted.stdout.splitlines()) == 11

        audit = cli(url, "audit", "lead", "lead-2", "--format", "json")
        assert audit.exit_code == 0, audit.stderr
        assert msgspec.json.decode(audit.stdout)["final"]["stage"] == "NEGOTIATION"

        # Replay as the follower role across both tenants, then catch a corrupted row.
        # (Followers read below the server-wide visibility horizon: a transaction left open
        # on the same server by another program holds them back, and this would see 0.)
        rebuilt = cli(url, "replay")
        assert rebuilt.exit_code == 0, rebuilt.stderr
        assert "from 22 events" in rebuilt.stdout
        assert cli(url, "replay", "--verify").exit_code == 0
        with psycopg.connect(url, autocommit=True) as conn:  # the owner: no RLS
            conn.execute("UPDATE gold_lead_journey SET stage = 'DEAD' WHERE lead_id = 'lead-1'")
        verified = cli(url, "replay", "--verify")
        assert verified.exit_code == 1
        assert "lead_id='lead-1'] stage: live 'DEAD', rebuilt 'NEGOTIATION'" in verified.stdout
