"""The reply corpus shipped for the sandbox: complete, varied and validated."""

from __future__ import annotations

import random
import re
import unicodedata

import pytest

from cerniq_outreach.adapters.channels.reply_corpus import (
    CorpusError,
    ReplyKind,
    load_corpus,
    parse_corpus,
)

# The opt-out keywords of domain.md, in the forms people type them.
OPT_OUT_KEYWORDS = (
    r"\bstop\b",
    r"dezabonare",
    r"nu m[aă] mai contacta[tț]i",
    r"scoate[tț]i-m[aă] din list[aă]",
    r"unsubscribe",
    r"remove me",
)


def test_the_corpus_covers_every_kind_in_both_languages():
    """At least 80 replies; every kind present; Romanian and English both present."""
    corpus = load_corpus()
    assert len(corpus.replies) >= 80
    for kind in ReplyKind:
        assert len(corpus.of_kind(kind)) >= 5, kind
    assert {r.language for r in corpus.replies} == {"ro", "en"}


def test_the_corpus_holds_diacritics_their_absence_short_replies_and_emojis():
    """Romanian with and without diacritics, single words, emoji-only and long replies."""
    texts = [r.text for r in load_corpus().replies]
    romanian = [r.text for r in load_corpus().replies if r.language == "ro"]
    assert any(set(t) & set("ăâîșțĂÂÎȘȚ") for t in romanian)
    assert sum(1 for t in romanian if not set(t) & set("ăâîșțĂÂÎȘȚ")) >= 20
    assert any(len(t.split()) == 1 for t in texts)
    assert any(all(unicodedata.category(c) == "So" for c in t.strip()) for t in texts)
    assert sum(any(unicodedata.category(c) == "So" for c in t) for t in texts) >= 10
    assert any(len(t) > 150 for t in texts)


def test_every_opt_out_keyword_appears_and_every_opt_out_line_has_one():
    """The opt-out lines use each keyword of domain.md, and none lacks a keyword."""
    opt_outs = [r.text.casefold() for r in load_corpus().of_kind(ReplyKind.OPT_OUT)]
    for keyword in OPT_OUT_KEYWORDS:
        assert any(re.search(keyword, t) for t in opt_outs), keyword
    for text in opt_outs:
        assert any(re.search(k, text) for k in OPT_OUT_KEYWORDS), text


def test_no_positive_or_neutral_reply_contains_an_opt_out_keyword():
    """A reply meant as interest must not be read as an opt-out by the keyword rules."""
    for kind in (ReplyKind.POSITIVE, ReplyKind.NEUTRAL):
        for reply in load_corpus().of_kind(kind):
            text = reply.text.casefold()
            assert not any(re.search(k, text) for k in OPT_OUT_KEYWORDS), reply.text


def test_the_picker_is_seeded():
    """The same generator state picks the same reply; every pick is of the asked kind."""
    corpus = load_corpus()
    picks = [
        corpus.pick(ReplyKind.COMPLAINT, random.Random(4))  # noqa: S311 - a seeded pick
        for _ in range(3)
    ]
    assert picks[0] == picks[1] == picks[2]
    assert picks[0].kind is ReplyKind.COMPLAINT


def test_a_malformed_line_is_refused_with_its_line_number():
    """An unknown kind, an unknown field or empty text fails loudly, naming the line."""
    good = b'{"text": "Da", "language": "ro", "kind": "positive"}\n'
    with pytest.raises(CorpusError, match="line 2"):
        parse_corpus(good + b'{"text": "x", "language": "ro", "kind": "angry"}\n')
    with pytest.raises(CorpusError, match="line 1"):
        parse_corpus(b'{"text": "x", "language": "de", "kind": "positive"}\n')
    with pytest.raises(CorpusError, match="empty"):
        parse_corpus(b'{"text": "  ", "language": "ro", "kind": "positive"}\n')


def test_a_corpus_missing_a_kind_is_refused():
    """The sandbox may ask for any kind, so each must have at least one reply."""
    with pytest.raises(CorpusError, match="no reply of kind"):
        parse_corpus(b'{"text": "Da", "language": "ro", "kind": "positive"}\n')
