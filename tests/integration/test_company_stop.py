"""Company-level stop through the engine.

An opt-out or a negative answer from one person stops the automated sequences of the
company's other leads, once, and nobody else's.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from cerniq_outreach.adapters.clock import SimulatedClock
from cerniq_outreach.adapters.migrations import migrate
from cerniq_outreach.application.enrolment import LeadInput
from cerniq_outreach.bootstrap import open_engine
from cerniq_outreach.domain.commands import OptOut, ReceiveReply, ScoreSentiment
from cerniq_outreach.domain.consent import ConsentRecord
from cerniq_outreach.domain.enums import (
    Channel,
    JourneyState,
    LawfulBasis,
    OptOutScope,
    SentimentLabel,
)
from cerniq_outreach.domain.events import Company, SequenceStopped
from cerniq_outreach.entrypoints.demo import DEMO_START
from cerniq_outreach.entrypoints.runtime import EngineLoop
from cerniq_outreach.settings import Settings

TENANT = "acme"


def lead(name: str, phone: str, fiscal_code: str | None) -> LeadInput:
    consent = ConsentRecord(
        channel_family=OptOutScope.WHATSAPP,
        basis=LawfulBasis.LEGITIMATE_INTEREST,
        evidence="test",
        source="test",
        collected_at=DEMO_START - timedelta(days=1),
    )
    return LeadInput(
        company=Company(name=name, phone=phone, fiscal_code=fiscal_code), consents=(consent,)
    )


@pytest.fixture
def engine(tmp_path):
    url = f"sqlite:///{tmp_path / 'stop.db'}"
    migrate(url)
    settings = dataclasses.replace(Settings.from_env({}), database_url=url)
    # Sunday: nothing is sent, so every journey keeps its sequence until the test acts.
    clock = SimulatedClock(DEMO_START - timedelta(days=1), speed=0)
    engine = open_engine(settings, clock=clock, release_thread=False, inline_workers=1)
    yield engine
    engine.close()


def enrol(engine, *leads: LeadInput) -> list[str]:
    return [engine.enrolment.enroll(TENANT, x, actor="test").lead_id for x in leads]


def stops(engine, lead_id: str) -> list[str]:
    return [
        r.event.reason
        for r in engine.log.store.read_stream(TENANT, lead_id)
        if isinstance(r.event, SequenceStopped)
    ]


def test_an_opt_out_stops_the_other_leads_of_the_same_fiscal_code_once(engine):
    """Same CUI: stopped (journey still open); another company: untouched; twice: once."""
    objector, colleague, other = enrol(
        engine,
        lead("Agro Verde SRL", "+40722000001", "RO123"),
        lead("Agro Verde SRL (Dolj)", "+40722000002", "RO123"),
        lead("Ferma Sud SRL", "+40722000003", "RO999"),
    )
    at = engine.clock.now()
    engine.journeys.run(
        TENANT,
        objector,
        [OptOut(command_id="stop-1", at=at, scope=OptOutScope.ALL, source="reply STOP")],
    )
    loop = EngineLoop(engine)
    loop.step()
    loop.step()  # a second pass (a redelivered job) adds nothing

    assert engine.journeys.load(TENANT, objector).stage is JourneyState.DEAD
    colleague_state = engine.journeys.load(TENANT, colleague)
    assert not colleague_state.sequence_active
    assert colleague_state.stage is JourneyState.COLD  # stopped, not ended
    assert len(stops(engine, colleague)) == 1
    assert "company stop" in stops(engine, colleague)[0]
    assert engine.journeys.load(TENANT, other).sequence_active
    assert stops(engine, other) == []


def test_a_negative_answer_stops_leads_of_the_same_name_when_there_is_no_fiscal_code(engine):
    """Without a CUI the company name matches (case aside); a positive answer stops nobody."""
    unhappy, same_name, happy, happy_colleague = enrol(
        engine,
        lead("Cereal Bărăgan", "+40722000011", None),
        lead("CEREAL BĂRĂGAN", "+40722000012", None),
        lead("Bio Holda SRL", "+40722000013", None),
        lead("Bio Holda SRL", "+40722000014", None),
    )
    at = engine.clock.now()
    for lead_id, label, score in (
        (unhappy, SentimentLabel.NEGATIVE, -60),
        (happy, SentimentLabel.POSITIVE, 70),
    ):
        engine.journeys.run(
            TENANT,
            lead_id,
            [
                ReceiveReply(
                    command_id=f"reply-{lead_id}",
                    at=at,
                    channel=Channel.WHATSAPP,
                    external_id=f"wa-{lead_id}",
                    text="...",
                    content_hash="h",
                ),
                ScoreSentiment(
                    command_id=f"score-{lead_id}",
                    at=at,
                    score=score,
                    label=label,
                    confidence=0.9,
                ),
            ],
        )
    EngineLoop(engine).step()

    assert not engine.journeys.load(TENANT, same_name).sequence_active
    assert engine.journeys.load(TENANT, happy_colleague).sequence_active
