"""Pacing of one phone's WhatsApp messages: a gap drawn per message, within the bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from cerniq_outreach.application.scheduler import PhonePacer

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@given(st.lists(st.uuids().map(str), min_size=1, max_size=30, unique=True))
def test_each_gap_lies_within_the_bounds_and_the_phone_waits_for_it(message_ids):
    """After each message the phone is busy for 45..150 s, and free again after that."""
    pacer = PhonePacer(45.0, 150.0)
    now = NOW
    for message_id in message_ids:
        assert pacer.is_free("t", "p1", now)
        pacer.used("t", "p1", now, message_id)
        slot = pacer.free_at("t", "p1")
        assert slot is not None
        assert timedelta(seconds=45) <= slot - now <= timedelta(seconds=150)
        assert not pacer.is_free("t", "p1", slot - timedelta(microseconds=1))
        now = slot


def test_gaps_differ_from_message_to_message_and_phones_are_paced_apart():
    """No fixed rhythm; one phone's pacing leaves the others free."""
    pacer = PhonePacer(45.0, 150.0)
    gaps = set()
    for i in range(50):
        pacer.used("t", "p1", NOW, f"m-{i}")
        slot = pacer.free_at("t", "p1")
        assert slot is not None
        gaps.add(slot - NOW)
    assert len(gaps) > 40
    assert pacer.is_free("t", "p2", NOW)
    assert pacer.free_at("t", "p2") is None
