"""The realistic journey both benchmarks replay, built with the domain's own `decide`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cerniq_outreach.domain import commands as c
from cerniq_outreach.domain.decide import decide
from cerniq_outreach.domain.enums import Channel, SentimentLabel
from cerniq_outreach.domain.events import Company, Event
from cerniq_outreach.domain.journey import Journey, evolve

T0 = datetime(2026, 3, 2, 8, tzinfo=UTC)


def realistic_journey(i: int, *, tenant: str, lead: str, start: datetime = T0) -> list[Event]:
    """Enrol, two WhatsApp steps sent, delivered and read, a reply and its negative score.

    16 events, two of them (enrolment, reply) carrying personal data.
    """
    state, out, n = Journey(), [], 0
    at = start

    def run(cls: type, **fields: object) -> None:
        nonlocal state, n, at
        n += 1
        at += timedelta(minutes=7)
        for event in decide(state, cls(command_id=f"{i}-{n}", at=at, **fields)):
            state = evolve(state, event)
            out.append(event)

    company = Company(name=f"Ferma {i}", phone="+40722123456", email=f"f{i}@agro.ro")
    run(c.Enroll, tenant_id=tenant, lead_id=lead, sequence_id="cold", company=company)
    for step in (1, 2):
        mid = f"m{i}-{step}"
        run(
            c.QueueMessage,
            message_id=mid,
            channel=Channel.WHATSAPP,
            content_hash="h",
            sequence_id="cold",
            step=step,
            quota_cost=1 if step == 1 else 0,
            phone_id="p1",
        )
        run(c.RecordSent, message_id=mid, provider="sandbox", external_id=mid)
        run(c.RecordDelivered, message_id=mid)
        run(c.RecordRead, message_id=mid)
    run(
        c.ReceiveReply,
        channel=Channel.WHATSAPP,
        external_id=f"r{i}",
        text="Da, sunați-mă mâine",
        content_hash="h",
    )
    run(c.ScoreSentiment, score=-60, label=SentimentLabel.NEGATIVE, confidence=0.8)
    return out
