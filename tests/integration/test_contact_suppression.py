"""Suppression across leads: one person behind two leads (the same email address).

An objection on one lead closes the channel on the other before anything is queued there,
recorded as an opt-out that names the suppression; an objection to everything keeps the
person out of later imports.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from cerniq_outreach.adapters.clock import SimulatedClock
from cerniq_outreach.adapters.migrations import migrate
from cerniq_outreach.application.enrolment import EnrolOutcome, LeadInput
from cerniq_outreach.bootstrap import open_engine
from cerniq_outreach.domain.commands import OptOut
from cerniq_outreach.domain.consent import ConsentRecord
from cerniq_outreach.domain.enums import LawfulBasis, OptOutScope
from cerniq_outreach.domain.events import Company, MessageQueued, OptedOut
from cerniq_outreach.entrypoints.demo import DEMO_START
from cerniq_outreach.entrypoints.runtime import EngineLoop
from cerniq_outreach.settings import Settings

TENANT = "acme"
EMAIL = "ion@agroverde.ro"


def lead(name: str, *, phone: str | None, email: str | None) -> LeadInput:
    consents = tuple(
        ConsentRecord(
            channel_family=family,
            basis=LawfulBasis.CONSENT,
            evidence="test",
            source="test",
            collected_at=DEMO_START - timedelta(days=1),
        )
        for family in (OptOutScope.WHATSAPP, OptOutScope.EMAIL)
    )
    return LeadInput(company=Company(name=name, phone=phone, email=email), consents=consents)


@pytest.fixture
def engine(tmp_path):
    url = f"sqlite:///{tmp_path / 'suppression.db'}"
    migrate(url)
    settings = dataclasses.replace(Settings.from_env({}), database_url=url)
    clock = SimulatedClock(DEMO_START, speed=0)  # Monday 08:00 Bucharest, before opening
    engine = open_engine(settings, clock=clock, release_thread=False, inline_workers=1)
    yield engine
    engine.close()


def opt_out(engine, lead_id: str, scope: OptOutScope) -> None:
    command = OptOut(command_id=f"o-{lead_id}", at=engine.clock.now(), scope=scope, source="STOP")
    engine.journeys.run(TENANT, lead_id, [command])


def test_an_email_objection_on_one_lead_closes_email_on_the_other(engine):
    """B's cold email never queues: B records the suppression as its own email opt-out."""
    a = engine.enrolment.enroll(
        TENANT, lead("Agro Verde", phone="+40722000001", email=EMAIL), actor="t"
    )
    b = engine.enrolment.enroll(TENANT, lead("Agro Verde 2", phone=None, email=EMAIL), actor="t")
    opt_out(engine, a.lead_id, OptOutScope.EMAIL)
    engine.clock.advance(timedelta(days=2, hours=2))  # B's cold email step is due (Wednesday)
    EngineLoop(engine).step()
    EngineLoop(engine).step()

    events = [r.event for r in engine.log.store.read_stream(TENANT, b.lead_id)]
    [suppressed] = [e for e in events if isinstance(e, OptedOut)]
    assert suppressed.channel is OptOutScope.EMAIL
    assert a.lead_id in suppressed.source
    assert not [e for e in events if isinstance(e, MessageQueued)]


def test_a_contact_who_objected_to_everything_is_not_enrolled_again(engine):
    """Same address, another phone: the import refuses it and says why."""
    first = engine.enrolment.enroll(
        TENANT, lead("Ferma", phone="+40722000009", email=EMAIL), actor="t"
    )
    opt_out(engine, first.lead_id, OptOutScope.ALL)
    again = engine.enrolment.enroll(
        TENANT, lead("Ferma", phone="+40722000010", email=EMAIL), actor="t"
    )
    assert again.outcome is EnrolOutcome.REFUSED
    assert "objected to all contact" in (again.detail or "")
    fresh = engine.enrolment.enroll(
        TENANT, lead("Alta", phone="+40722000011", email="alt@ferma.ro"), actor="t"
    )
    assert fresh.outcome is EnrolOutcome.ENROLLED
