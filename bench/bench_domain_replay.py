"""Decode + fold of journey streams in memory, against decoding alone (the baseline).

Builds realistic journeys with `decide` (enrol, queue, send, deliver, read, reply, score,
review), encodes their events once, then times: (a) decode only, (b) decode and fold every
stream. Prints RESULT lines; no assertion on the figures.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from cerniq_outreach.domain import codec
from cerniq_outreach.domain import commands as c
from cerniq_outreach.domain.decide import decide
from cerniq_outreach.domain.enums import Channel, SentimentLabel
from cerniq_outreach.domain.events import Company
from cerniq_outreach.domain.journey import Journey, replay

LEADS = 20_000
T0 = datetime(2026, 3, 2, 8, tzinfo=UTC)


def journey_events(i: int) -> list[bytes]:
    """The encoded events of one realistic journey (14 events)."""
    state, out, n = Journey(), [], 0
    at = T0

    def run(cls: type, **fields: object) -> None:
        nonlocal state, n, at
        n += 1
        at += timedelta(minutes=7)
        events = decide(state, cls(command_id=f"{i}-{n}", at=at, **fields))
        state = replay(events, state)
        out.extend(codec.encode(e) for e in events)

    company = Company(name=f"Ferma {i}", phone="+40722123456", email=f"f{i}@agro.ro")
    run(c.Enroll, tenant_id="t", lead_id=f"lead-{i}", sequence_id="cold", company=company)
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
        text="Da, sunați-mă",
        content_hash="h",
    )
    run(c.ScoreSentiment, score=-60, label=SentimentLabel.NEGATIVE, confidence=0.8)
    return out


def main() -> None:
    """Time decode-only against decode-and-fold over the same streams."""
    streams = [journey_events(i) for i in range(LEADS)]
    total = sum(len(s) for s in streams)

    started = time.perf_counter()
    for stream in streams:
        for raw in stream:
            codec.decode(raw)
    decode_only = time.perf_counter() - started

    started = time.perf_counter()
    for stream in streams:
        replay(codec.decode(raw) for raw in stream)
    decode_fold = time.perf_counter() - started

    print(f"RESULT domain_replay_events {total} events")
    print(f"RESULT domain_decode_only_rate {total / decode_only:.0f} events/s")
    print(f"RESULT domain_decode_fold_rate {total / decode_fold:.0f} events/s")
    print(f"RESULT domain_decode_fold_vs_decode_only {decode_only / decode_fold:.2f} ratio")


if __name__ == "__main__":
    main()
