"""Decode + fold of journey streams in memory, against decoding alone (the baseline).

Builds realistic journeys with `decide` (enrol, queue, send, deliver, read, reply, score,
review), encodes their events once, then times: (a) decode only, (b) decode and fold every
stream. Prints RESULT lines; no assertion on the figures.
"""

from __future__ import annotations

import time

from cerniq_outreach.domain import codec
from cerniq_outreach.domain.journey import replay

from journeys import realistic_journey

LEADS = 20_000


def journey_events(i: int) -> list[bytes]:
    """The encoded events of one realistic journey."""
    return [codec.encode(e) for e in realistic_journey(i, tenant="t", lead=f"lead-{i}")]


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
