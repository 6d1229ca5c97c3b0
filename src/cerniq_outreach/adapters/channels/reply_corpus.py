"""The reply corpus: what leads write back, for the sandbox provider and tests.

`src/cerniq_outreach/data/replies.jsonl` holds one reply a line, `{"text", "language", "kind"}`:
Romanian with and without diacritics, English, single words, emojis and long messages, of
every kind the reply analysis tells apart (`domain.md`). It is read through
`importlib.resources` so it works from a wheel as well as from the source tree, and validated
on load: a malformed line fails loudly with its line number rather than producing odd demos.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from enum import StrEnum
from functools import cache
from importlib.resources import files
from typing import Final, Literal

import msgspec

CORPUS_PACKAGE: Final = "cerniq_outreach.data"
CORPUS_FILE: Final = "replies.jsonl"


class ReplyKind(StrEnum):
    """What a reply means for the journey (the sandbox's reply mix is weighted by these)."""

    POSITIVE = "positive"
    NEUTRAL = "neutral"
    NEGATIVE = "negative"
    OPT_OUT = "opt_out"
    COMPLAINT = "complaint"
    OUT_OF_OFFICE = "out_of_office"
    WRONG_PERSON = "wrong_person"


class Reply(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One reply of the corpus."""

    text: str
    language: Literal["ro", "en"]
    kind: ReplyKind


class CorpusError(ValueError):
    """The shipped corpus is malformed (a packaging or editing defect)."""


class ReplyCorpus:
    """The replies by kind, with a seeded picker."""

    def __init__(self, replies: Sequence[Reply]) -> None:
        by_kind: dict[ReplyKind, list[Reply]] = {kind: [] for kind in ReplyKind}
        for reply in replies:
            by_kind[reply.kind].append(reply)
        empty = [kind.value for kind, items in by_kind.items() if not items]
        if empty:
            # The sandbox may be asked for any kind: a missing one would fail mid-demo.
            raise CorpusError(f"no reply of kind {', '.join(empty)}")
        self._all = tuple(replies)
        self._by_kind: Mapping[ReplyKind, tuple[Reply, ...]] = {
            kind: tuple(items) for kind, items in by_kind.items()
        }

    @property
    def replies(self) -> tuple[Reply, ...]:
        """Every reply, in file order."""
        return self._all

    def of_kind(self, kind: ReplyKind) -> tuple[Reply, ...]:
        """The replies of one kind, in file order."""
        return self._by_kind[kind]

    def pick(self, kind: ReplyKind, rng: random.Random) -> Reply:
        """A reply of `kind` chosen with `rng` (the same generator state gives the same one)."""
        return rng.choice(self._by_kind[kind])


def parse_corpus(raw: bytes) -> ReplyCorpus:
    """Validate and index a corpus in the JSON-lines format.

    Raises:
        CorpusError: a line is not a valid reply (the message names the line), or a kind has
            no reply at all.
    """
    decoder = msgspec.json.Decoder(Reply)
    replies: list[Reply] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            reply = decoder.decode(line)
        except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
            raise CorpusError(f"{CORPUS_FILE} line {number}: {exc}") from None
        if not reply.text.strip():
            raise CorpusError(f"{CORPUS_FILE} line {number}: empty text")
        replies.append(reply)
    return ReplyCorpus(replies)


@cache
def load_corpus() -> ReplyCorpus:
    """The corpus shipped with the package (read once per process)."""
    return parse_corpus(files(CORPUS_PACKAGE).joinpath(CORPUS_FILE).read_bytes())
