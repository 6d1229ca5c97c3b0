"""A worker that died mid-send: the next one asks the provider before sending again.

The dead worker's trace is a `SendAttempted` without `MessageSent`. While the attempt's
lease runs, the job waits (`RetryLater`); after it, the worker looks in the chat history: a
message that went out is recorded as sent (once, dated when it was allowed), one that did
not is sent now. Either way the provider sees the message exactly once.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from cerniq_outreach.adapters.clock import SimulatedClock
from cerniq_outreach.adapters.migrations import migrate
from cerniq_outreach.application.enrolment import LeadInput
from cerniq_outreach.application.jobs import SEND_WHATSAPP, RetryLater
from cerniq_outreach.bootstrap import open_engine
from cerniq_outreach.domain.commands import AttemptSend
from cerniq_outreach.domain.consent import ConsentRecord
from cerniq_outreach.domain.enums import LawfulBasis, OptOutScope
from cerniq_outreach.domain.events import Company, MessageSent
from cerniq_outreach.entrypoints.demo import DEMO_START
from cerniq_outreach.settings import Settings

TENANT = "acme"
OUR_NUMBER = "+40740000001"
LEAD_NUMBER = "+40790000001"


@pytest.fixture
def engine(tmp_path):
    url = f"sqlite:///{tmp_path / 'recovery.db'}"
    migrate(url)
    settings = dataclasses.replace(Settings.from_env({}), database_url=url)
    clock = SimulatedClock(DEMO_START + timedelta(hours=2), speed=0)  # Monday 10:00 Bucharest
    engine = open_engine(settings, clock=clock, release_thread=False, inline_workers=1)
    engine.pool.add(TENANT, OUR_NUMBER, warmup_started=None, by="test")
    consent = ConsentRecord(
        channel_family=OptOutScope.WHATSAPP,
        basis=LawfulBasis.LEGITIMATE_INTEREST,
        evidence="test",
        source="test",
        collected_at=DEMO_START - timedelta(days=1),
    )
    lead = LeadInput(company=Company(name="Agro Verde", phone=LEAD_NUMBER), consents=(consent,))
    engine.enrolment.enroll(TENANT, lead, actor="test")
    yield engine
    engine.close()


def queued_message(engine):
    """Queue the first step (the scheduler alone: no dispatcher, so no worker runs it)."""
    engine.scheduler.tick()
    engine.scheduler.tick()
    with engine.log.read_models.transaction() as tx:
        [row] = tx.fetchall("SELECT lead_id FROM gold_lead_journey")
    lead_id = row["lead_id"]
    journey = engine.journeys.load(TENANT, lead_id)
    [record] = journey.messages.values()
    return lead_id, journey, record


def crash_after_attempt(engine, lead_id, record, *, provider_reached: bool) -> None:
    """What a worker killed mid-send leaves: the attempt, and maybe the provider's message."""
    engine.journeys.run(
        TENANT,
        lead_id,
        [
            AttemptSend(
                command_id="dead-worker", at=engine.clock.now(), message_id=record.message_id
            )
        ],
    )
    if provider_reached:
        journey = engine.journeys.load(TENANT, lead_id)
        version = engine.catalog.version(record.template_id, record.template_version)
        text = engine.catalog.render_version(
            version, tenant_id=TENANT, lead_id=lead_id, company=journey.company, step=record.step
        ).text
        engine.sandbox.whatsapp.send_to_phone(
            from_phone=OUR_NUMBER, to_phone=LEAD_NUMBER, text=text
        )


def run_job(engine, lead_id, record) -> None:
    payload = {"tenant_id": TENANT, "lead_id": lead_id, "message_id": record.message_id}
    engine.handlers[SEND_WHATSAPP](payload)


def sent_events(engine, lead_id):
    return [
        r.event
        for r in engine.log.store.read_stream(TENANT, lead_id)
        if isinstance(r.event, MessageSent)
    ]


@pytest.mark.parametrize("provider_reached", [True, False], ids=["sent-before-crash", "not-sent"])
def test_a_dead_workers_message_goes_out_exactly_once(engine, provider_reached):
    """Within the lease: wait. After it: found in the chat, or sent now. One send either way."""
    lead_id, _, record = queued_message(engine)
    crash_after_attempt(engine, lead_id, record, provider_reached=provider_reached)

    with pytest.raises(RetryLater):
        run_job(engine, lead_id, record)  # the attempt may still be running somewhere
    assert sent_events(engine, lead_id) == []

    engine.clock.advance(timedelta(seconds=engine.settings.send_lease_seconds + 1))
    run_job(engine, lead_id, record)
    run_job(engine, lead_id, record)  # a redelivered job changes nothing

    [sent] = sent_events(engine, lead_id)
    assert engine.sandbox.total_sends() == 1
    assert engine.sandbox.repeated_sends() == {}
    found = engine.sandbox.whatsapp.find_sent(
        from_phone=OUR_NUMBER,
        to_phone=LEAD_NUMBER,
        text=engine.sandbox.whatsapp.message(sent.external_id).text,
    )
    assert found is not None
    assert found.external_id == sent.external_id
