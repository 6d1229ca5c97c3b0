"""The channel adapters' pure helpers: Retry-After, redaction, Resend keys and tags."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cerniq_outreach.adapters.channels.http import HttpPolicy, retry_after_seconds
from cerniq_outreach.adapters.channels.redaction import REDACTED, redact, redact_headers, scrub
from cerniq_outreach.adapters.channels.resend import (
    batch_idempotency_key,
    idempotency_key,
    tag_value,
)

NOW = datetime(2025, 3, 4, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("Tue, 04 Mar 2025 08:00:30 GMT", 30.0),
        ("Tue, 04 Mar 2025 07:00:00 GMT", 0.0),
        ("nan", None),
        ("inf", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(header, seconds):
    """Delta-seconds and HTTP dates both give a wait; a past date waits 0; junk gives None."""
    assert retry_after_seconds(header, NOW) == seconds


def test_a_policy_needs_at_least_one_attempt():
    """Zero attempts would never call the provider at all."""
    with pytest.raises(ValueError, match="max_attempts"):
        HttpPolicy(max_attempts=0)


def test_personal_fields_are_masked_whole_and_free_text_is_scrubbed():
    """Known personal fields vanish; addresses and numbers inside other strings are masked."""
    body = {
        "phone": "+40733000111",
        "leads": [{"email": "ion@agro.ro", "custom_variables": {"judet": "Timiș"}}],
        "message": "Phone +40 733 000 111 or ion@agro.ro is not valid",
        "campaign_id": "c-1",
        "count": 3,
    }
    assert redact(body) == {
        "phone": REDACTED,
        "leads": [{"email": REDACTED, "custom_variables": REDACTED}],
        "message": f"Phone {REDACTED} or {REDACTED} is not valid",
        "campaign_id": "c-1",
        "count": 3,
    }


def test_scrub_leaves_timestamps_and_short_numbers_readable():
    """Only phone-shaped digit runs are masked, not dates, times or counts."""
    text = "2025-03-04 10:00:00 +0200: 42 sent to 0733000111"
    assert scrub(text) == f"2025-03-04 10:00:00 +0200: 42 sent to {REDACTED}"


def test_credential_headers_are_masked():
    """Authorization and any key/token/secret header are masked; others are kept."""
    headers = {"Authorization": "Bearer re_x", "X-Api-Key": "k", "Content-Type": "text/plain"}
    assert redact_headers(headers) == {
        "Authorization": REDACTED,
        "X-Api-Key": REDACTED,
        "Content-Type": "text/plain",
    }


def test_idempotency_keys_are_stable_and_at_most_256_characters():
    """The same message id gives the same key; very long ids are hashed to fit."""
    assert idempotency_key("m-1") == idempotency_key("m-1") != idempotency_key("m-2")
    long_key = idempotency_key("x" * 300)
    assert len(long_key) <= 256
    assert long_key == idempotency_key("x" * 300)
    assert batch_idempotency_key(["a", "b"]) != batch_idempotency_key(["b", "a"])


def test_tag_values_keep_only_the_characters_resend_allows():
    """Anything but ASCII letters, digits, _ and - becomes _; UUIDs pass unchanged."""
    assert tag_value("acme.ro/lead 7ă") == "acme_ro_lead_7_"
    uuid = "0195a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"
    assert tag_value(uuid) == uuid
