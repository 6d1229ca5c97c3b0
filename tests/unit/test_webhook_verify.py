"""Webhook verification: the Svix scheme exactly as published, shared secrets in constant time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cerniq_outreach.adapters.clock import SimulatedClock
from cerniq_outreach.adapters.webhooks.verify import (
    SharedSecretVerifier,
    SvixVerifier,
    VerificationFailed,
    svix_signature,
)

# The test vector of the Svix / Standard Webhooks documentation.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105 - a test secret
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
STAMP = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def verifier(at: int = STAMP, secrets=SECRET) -> SvixVerifier:
    return SvixVerifier(secrets, SimulatedClock(datetime.fromtimestamp(at, UTC), speed=0))


def headers(signature: str = SIGNATURE, stamp: int = STAMP) -> dict[str, str]:
    return {"svix-id": MSG_ID, "svix-timestamp": str(stamp), "svix-signature": signature}


def reason(call) -> str:
    with pytest.raises(VerificationFailed) as caught:
        call()
    return caught.value.reason


def test_the_published_svix_vector_signs_and_verifies():
    """Our signer reproduces the documented signature, and the verifier returns the svix-id."""
    assert svix_signature(SECRET, MSG_ID, STAMP, BODY) == SIGNATURE
    assert verifier().verify(headers(), BODY) == MSG_ID


def test_any_of_several_space_separated_signatures_may_match():
    """During a secret rotation Svix sends one signature per secret; one match is enough."""
    other = "v1," + "A" * 43 + "="
    assert verifier().verify(headers(f"v1a,xyz {other} {SIGNATURE}"), BODY) == MSG_ID


def test_one_of_our_rotated_secrets_is_enough():
    """With old and new secrets configured, an event signed with either verifies."""
    assert verifier(secrets=("whsec_" + "QUJD" * 8, SECRET)).verify(headers(), BODY) == MSG_ID


@pytest.mark.parametrize("offset", [-300, 300])
def test_five_minutes_either_way_is_inside_the_tolerance(offset):
    """The window is closed at ±5 minutes, judged by the injected clock."""
    assert verifier(STAMP + offset).verify(headers(), BODY) == MSG_ID


@pytest.mark.parametrize("offset", [-301, 301])
def test_a_second_past_five_minutes_either_way_is_refused(offset):
    """A stale or future timestamp is a replay risk: refused even with a good signature."""
    assert reason(lambda: verifier(STAMP + offset).verify(headers(), BODY)) == "stale_timestamp"


def test_a_changed_body_or_id_breaks_the_signature():
    """The HMAC covers the id, the timestamp and the raw body: any change is refused."""
    assert reason(lambda: verifier().verify(headers(), BODY.replace(b"2", b"3", 1))) == (
        "bad_signature"
    )
    changed = {**headers(), "svix-id": MSG_ID + "x"}
    assert reason(lambda: verifier().verify(changed, BODY)) == "bad_signature"


@pytest.mark.parametrize("missing", ["svix-id", "svix-timestamp", "svix-signature"])
def test_a_missing_header_is_refused(missing):
    """All three headers are required."""
    partial = {k: v for k, v in headers().items() if k != missing}
    assert reason(lambda: verifier().verify(partial, BODY)) == "missing_headers"


def test_a_non_numeric_timestamp_is_refused():
    """The timestamp is Unix seconds."""
    assert reason(lambda: verifier().verify({**headers(), "svix-timestamp": "soon"}, BODY)) == (
        "bad_timestamp"
    )


def test_without_a_secret_every_event_is_refused():
    """No secret configured fails closed, it never accepts unverified events."""
    assert reason(lambda: verifier(secrets=None).verify(headers(), BODY)) == "not_configured"
    assert reason(lambda: SharedSecretVerifier(None).verify({"x-webhook-secret": "s"})) == (
        "not_configured"
    )


def test_a_malformed_svix_secret_fails_at_start_up():
    """A secret that is not base64 after whsec_ is a configuration error, raised at once."""
    with pytest.raises(ValueError, match="base64"):
        verifier(secrets="whsec_not base64!")


def test_a_shared_secret_passes_in_the_path_or_the_header_and_nothing_else():
    """The path token wins over the header; wrong or missing secrets are refused."""
    check = SharedSecretVerifier("s3cret")
    check.verify({"x-webhook-secret": "s3cret"})
    check.verify({}, "s3cret")
    assert reason(lambda: check.verify({"x-webhook-secret": "s3cret"}, "nope")) == "bad_secret"
    assert reason(lambda: check.verify({"x-webhook-secret": "s3cre"})) == "bad_secret"
    assert reason(lambda: check.verify({})) == "missing_secret"
