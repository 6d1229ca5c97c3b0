"""The engine end to end, embedded: SQLite, in-process quota and jobs, the sandbox providers.

Leads are enrolled, simulated business days are driven, and then the proof is read from the
log alone (`events export`): every invariant of `domain.md` held, every queued message was
sent at most once and the sandbox saw exactly the sends the log records, and a rebuild of
the read models equals the live ones (`replay --verify`).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections import defaultdict
from datetime import datetime, timedelta

import pytest

from cerniq_outreach.adapters.clock import SimulatedClock
from cerniq_outreach.adapters.migrations import migrate
from cerniq_outreach.application.demo_data import DEMO_TENANT
from cerniq_outreach.application.scheduler import SchedulerSettings
from cerniq_outreach.bootstrap import open_engine, quota_policy
from cerniq_outreach.entrypoints.demo import DEMO_START, DemoPlan, drive, seed_demo
from cerniq_outreach.entrypoints.runtime import EngineLoop
from cerniq_outreach.settings import Settings
from engine_support import audit_from_export, cli, describe, export_lines

PLAN = DemoPlan(phones=4, leads=160, days=3, seed=11)


@pytest.fixture(scope="module")
def embedded_run(tmp_path_factory: pytest.TempPathFactory):
    """One embedded run of three business days, shared by the checks below."""
    path = tmp_path_factory.mktemp("engine") / "engine.db"
    url = f"sqlite:///{path}"
    migrate(url)
    settings = dataclasses.replace(Settings.from_env({}), database_url=url)
    clock = SimulatedClock(DEMO_START, speed=0)
    hours = quota_policy(settings)(DEMO_TENANT).hours
    engine = open_engine(settings, clock=clock, sandbox_seed=PLAN.seed, release_thread=False)
    try:
        seed_demo(engine, PLAN)
        drive(EngineLoop(engine), clock, hours, PLAN.days)
        engine.projector.catch_up()
        sandbox = engine.sandbox
        assert sandbox is not None
        yield {
            "env": {"CERNIQ_DATABASE_URL": url},
            "hours": hours,
            "total_sends": sandbox.total_sends(),
            "repeated": sandbox.repeated_sends(),
            # Jobs waiting for a later time (a send deferred to the next window, say).
            "delayed_jobs": engine.inline_jobs.delayed() if engine.inline_jobs else 0,
        }
    finally:
        engine.close()


def test_every_invariant_holds_from_the_export_alone(embedded_run):
    """Quota, hours, opt-outs, replies, one send per message: all hold in the export."""
    report, _ = audit_from_export(embedded_run["env"], embedded_run["hours"])
    assert report.ok, describe(report)


def test_the_engine_did_real_work_on_every_channel(embedded_run):
    """The invariants are not vacuous: sends on every channel, replies, scores, reviews."""
    report, types = audit_from_export(embedded_run["env"], embedded_run["hours"])
    summary = report.summary
    assert summary.new_conversations > 0
    assert summary.sent.get("WHATSAPP", 0) > summary.new_conversations  # follow-ups went out
    assert summary.sent.get("EMAIL_COLD", 0) > 0
    assert summary.replies > 0
    assert types["SentimentScored"] > 0
    assert types["ReviewRequested"] > 0
    assert types["LeadEnrolled"] == PLAN.leads


def test_one_send_per_message_and_the_sandbox_agrees(embedded_run):
    """The provider saw each message once, and the log records each provider call once."""
    _, types = audit_from_export(embedded_run["env"], embedded_run["hours"])
    assert embedded_run["repeated"] == {}
    # Every provider call ended as exactly one MessageSent or one (refused) MessageFailed.
    assert embedded_run["total_sends"] == types["MessageSent"] + types["MessageFailed"]
    # No event without a job: a message still pending at the end has a job waiting for it.
    settled = types["MessageSent"] + types["MessageFailed"] + types["MessageCancelled"]
    pending = types["MessageQueued"] - settled
    assert 0 <= pending <= embedded_run["delayed_jobs"]


def test_replay_equals_the_live_read_models(embedded_run):
    """A rebuild of every read model from the log equals the live tables."""
    result = cli(embedded_run["env"], "replay", "--verify")
    assert result.exit_code == 0, result.output


def test_sends_on_one_phone_are_spaced_and_never_machine_regular(embedded_run):
    """Consecutive WhatsApp messages of a phone are the jitter's floor apart or more.

    The gaps vary: no fixed rhythm a spam filter could spot. (The demo's clock moves a
    minute a step, so its gaps come in whole minutes; the scheduler process ticks every
    second and spaces by the second.)
    """
    floor = timedelta(seconds=SchedulerSettings().jitter_low_seconds)
    by_phone: dict[str, list[datetime]] = defaultdict(list)
    for line in export_lines(embedded_run["env"]):
        row = json.loads(line)
        data = row["data"]
        if row["event_type"] == "MessageQueued" and data["channel"] == "WHATSAPP":
            by_phone[data["phone_id"]].append(datetime.fromisoformat(row["occurred_at"]))
    gaps = []
    for times in by_phone.values():
        times.sort()
        gaps += [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(by_phone) == PLAN.phones
    assert gaps
    assert min(gaps) >= floor
    assert len(set(gaps)) >= 5  # spread over many intervals, not one repeated
