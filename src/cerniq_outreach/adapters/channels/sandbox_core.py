"""The sandbox's shared state: seeded randomness, ids, send counts and the outcome timeline.

Determinism is the point: a message's fate is drawn from a generator seeded by
(sandbox seed, channel, the message's key), never from a shared stream, so the order in which
messages are sent, or how many other messages there are, cannot change what happens to one.
Ids are derived the same way, so a run replays byte for byte for the same seed and clock.

Outcomes wait on a heap ordered by (due time, message key, step). The key breaks ties between
outcomes due at the same second, so even ties do not depend on send order.
"""

from __future__ import annotations

import hashlib
import heapq
import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from cerniq_outreach.adapters.channels.reply_corpus import ReplyCorpus
from cerniq_outreach.adapters.channels.sandbox_config import SandboxRates, SandboxSecrets
from cerniq_outreach.application.ports import Clock

Webhook = tuple[str, Mapping[str, str], bytes]
"""A provider's POST: (provider name, headers, raw body)."""

Fire = Callable[[datetime], Webhook | None]
"""Builds an outcome's webhook at emission time (None: the outcome no longer applies)."""


@dataclass(frozen=True, order=True, slots=True)
class Due:
    """An outcome waiting on the timeline."""

    at: datetime
    order: str
    fire: Fire = field(compare=False)


class SandboxCore:
    """What the three sandbox channels share; every method is safe across threads.

    The lock is re-entrant because a channel holds it while it schedules; it is never held
    while a webhook is delivered, since the sink may call straight back into a channel (an
    inline job that answers a reply).
    """

    def __init__(
        self,
        clock: Clock,
        *,
        seed: int,
        rates: SandboxRates,
        secrets: SandboxSecrets,
        corpus: ReplyCorpus,
    ) -> None:
        self.clock = clock
        self.seed = seed
        self.rates = rates
        self.secrets = secrets
        self.corpus = corpus
        self.lock = threading.RLock()
        self._sends: Counter[str] = Counter()
        self._timeline: list[Due] = []
        self._step = 0

    def rng(self, *key: str) -> random.Random:
        """A generator for one message (or recipient): the same key, the same draws.

        A str seed is hashed with SHA-512 by `random.Random`, so it is stable across processes
        (unlike `hash()`, which is salted per process).
        """
        seed = "\x1f".join((str(self.seed), *key))
        return random.Random(seed)  # noqa: S311 - a seeded simulation, not a secret

    def make_id(self, *key: str) -> str:
        """A UUID-shaped id derived from the seed and `key` (version 4 bits set)."""
        digest = hashlib.sha256("\x1f".join((str(self.seed), *key)).encode()).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4))

    def count_send(self, key: str) -> int:
        """Count one send call for `key`; returns its ordinal (1 for the first call)."""
        with self.lock:
            self._sends[key] += 1
            return self._sends[key]

    def sends(self, key: str) -> int:
        """How many times a send was called for `key`."""
        with self.lock:
            return self._sends[key]

    def total_sends(self) -> int:
        """Every send call counted so far."""
        with self.lock:
            return sum(self._sends.values())

    def repeated(self) -> dict[str, int]:
        """Every key sent more than once, with its count."""
        with self.lock:
            return {key: n for key, n in self._sends.items() if n > 1}

    def schedule(self, at: datetime, order: str, fire: Fire) -> None:
        """Put an outcome on the timeline."""
        with self.lock:
            self._step += 1
            # The step number only separates outcomes of one message at the same second, in
            # the order the message's fate was drawn (delivered before read).
            heapq.heappush(self._timeline, Due(at, f"{order}\x1f{self._step:012d}", fire))

    def pop_due(self, horizon: datetime) -> Due | None:
        """The earliest outcome due at or before `horizon`, taken off the timeline."""
        with self.lock:
            if self._timeline and self._timeline[0].at <= horizon:
                return heapq.heappop(self._timeline)
            return None

    def pending(self) -> int:
        """How many outcomes are still waiting."""
        with self.lock:
            return len(self._timeline)

    def next_due(self) -> datetime | None:
        """When the next outcome is due (None when nothing waits)."""
        with self.lock:
            return self._timeline[0].at if self._timeline else None
