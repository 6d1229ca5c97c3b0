"""Stored events: every type round-trips, old payloads keep decoding, unknown types are named."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cerniq_outreach.domain import codec
from cerniq_outreach.domain.events import EVENT_CLASSES, EVENT_TYPES, Event, event_type_name

from strategies import aware_datetimes

CORPUS = Path(__file__).parent / "corpus" / "events_v1.jsonl"


# Fields whose valid values are narrower than their Python type.
VALID_FIELDS = {
    "occurred_at": aware_datetimes,
    "sla_due_at": aware_datetimes,
    "until": aware_datetimes,
    "score": st.integers(-100, 100),
    "confidence": st.floats(0, 1),
    "quota_cost": st.integers(0, 1),
    "text_preview": st.text(max_size=500),
    "reputation": st.none() | st.integers(0, 100),
    "daily_limit": st.integers(0, 200),
}


def valid_events(cls: type[Event]) -> st.SearchStrategy[Event]:
    """Any valid instance of `cls`; other fields are drawn from their annotations."""
    fields = {f: s for f, s in VALID_FIELDS.items() if f in cls.__struct_fields__}
    return st.builds(cls, **fields)


@pytest.mark.parametrize("cls", EVENT_TYPES, ids=lambda cls: cls.__name__)
@given(data=st.data())
def test_every_event_type_round_trips_through_the_codec(cls, data):
    """Encoding then decoding any event gives it back, equal and of the same type."""
    event = data.draw(valid_events(cls))
    raw = codec.encode(event)
    back = codec.decode(raw, event_type=event_type_name(event))
    assert back == event
    assert type(back) is cls


def test_each_tag_is_explicit_and_stable():
    """The stored tag of each event is its documented name, not something derived later."""
    assert set(EVENT_CLASSES) == {cls.__name__ for cls in EVENT_TYPES}
    for name, cls in EVENT_CLASSES.items():
        assert cls.__struct_config__.tag == name


def test_frozen_corpus_of_stored_payloads_still_decodes():
    """Every payload ever written to the corpus decodes with today's code, to its own type."""
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    assert len(lines) >= len(EVENT_TYPES), "the corpus covers every event type"
    seen = set()
    for number, line in enumerate(lines, start=1):
        stored = json.loads(line)
        raw = json.dumps(stored["data"]).encode()
        event = codec.decode(raw, event_type=stored["event_type"], version=stored["version"])
        assert event_type_name(event) == stored["event_type"], f"corpus line {number}"
        seen.add(stored["event_type"])
    assert seen == set(EVENT_CLASSES)


def test_unknown_fields_from_a_newer_writer_are_tolerated():
    """A stored event with an extra field (written by newer code) still decodes."""
    stored = json.loads(CORPUS.read_text(encoding="utf-8").splitlines()[0])
    data = {**stored["data"], "added_in_a_future_version": 42}
    event = codec.decode(json.dumps(data), event_type=stored["event_type"])
    assert event_type_name(event) == stored["event_type"]


def test_unknown_event_type_is_named_not_skipped():
    """Decoding a type this code does not know raises an error that names the type."""
    with pytest.raises(codec.UnknownEventType, match="LeadTeleported"):
        codec.decode(b'{"type": "LeadTeleported"}', event_type="LeadTeleported")
    with pytest.raises(codec.UnknownEventType, match="LeadTeleported"):
        codec.decode(b'{"type": "LeadTeleported", "event_id": "e"}')


def test_payload_that_does_not_fit_its_type_is_refused():
    """A stored payload with a wrong field type or value is an error, never a half-built event."""
    with pytest.raises(codec.EventDecodeError):
        codec.decode(b'{"type": "OptedOut", "event_id": 1}', event_type="OptedOut")
    scored = json.loads(CORPUS.read_text(encoding="utf-8").splitlines()[15])["data"]
    assert scored["type"] == "SentimentScored"
    for field, bad in [("score", 101), ("confidence", 1.5), ("occurred_at", "2026-01-01T10:00:00")]:
        with pytest.raises(codec.EventDecodeError, match=field):
            codec.decode(json.dumps({**scored, field: bad}), event_type="SentimentScored")


def test_upcasters_lift_old_versions_in_order(monkeypatch):
    """A payload written at an old version is lifted through each upcaster, then decoded."""
    cls = EVENT_CLASSES["SequenceStopped"]
    monkeypatch.setattr(cls, "SCHEMA_VERSION", 3)
    monkeypatch.setattr(codec, "UPCASTERS", {})
    # v1 called the field "why"; v2 upper-cased it; v3 is today's shape.
    codec.register_upcaster("SequenceStopped", 1)(lambda p: {**p, "reason": p.pop("why")})
    codec.register_upcaster("SequenceStopped", 2)(lambda p: {**p, "reason": p["reason"].lower()})
    old = {
        "event_id": "e1",
        "tenant_id": "t",
        "lead_id": "l",
        "occurred_at": "2026-01-05T10:00:00Z",
        "why": "REPLY RECEIVED",
    }
    event = codec.decode(msgspec.json.encode(old), event_type="SequenceStopped", version=1)
    assert event == cls(
        event_id="e1",
        tenant_id="t",
        lead_id="l",
        occurred_at=datetime(2026, 1, 5, 10, 0, tzinfo=UTC),
        reason="reply received",
    )
    with pytest.raises(codec.EventDecodeError, match="newer"):
        codec.decode(msgspec.json.encode(old), event_type="SequenceStopped", version=4)
