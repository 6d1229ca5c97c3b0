"""Webhook intake over HTTP: verified before read, refused with nothing recorded, recorded once.

The app runs with the production wiring on a SQLite file: Svix and shared-secret verifiers,
the SQL inbox, the in-process job queue running the processor into the event store.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from cerniq_outreach.adapters.eventstore.sqlite import SqliteEventStore
from cerniq_outreach.adapters.migrations import migrate_sqlite
from cerniq_outreach.adapters.vault import MemoryVault
from cerniq_outreach.application.projections import INLINE_PROJECTIONS
from cerniq_outreach.application.webhooks import EVENTS_COUNTER, REJECTED_COUNTER
from cerniq_outreach.domain.enums import Channel
from cerniq_outreach.domain.events import MessageDelivered, MessageOpened, ReplyReceived

from projection_support import Lead
from webhook_support import (
    INSTANTLY_SECRET,
    NOW,
    TIMELINESAI_SECRET,
    inbox_rows,
    instantly_body,
    resend_body,
    svix_headers,
    timelinesai_body,
    webhook_stack,
)

MB = 1024 * 1024


@pytest.fixture
def store(tmp_path):
    path = str(tmp_path / "cerniq.db")
    migrate_sqlite(path)
    store = SqliteEventStore(path, MemoryVault(), inline_projections=INLINE_PROJECTIONS)
    yield store
    store.close()


@pytest.fixture
def stack(store):
    with webhook_stack(store, store.read_models) as s:
        yield s


@pytest.fixture
def lead(store):
    """An enrolled lead with a sent warm email, WhatsApp message and cold email."""
    lead = Lead(store)
    for message_id, channel in (
        ("m-wa", Channel.WHATSAPP),
        ("m-warm", Channel.EMAIL_WARM),
        ("m-cold", Channel.EMAIL_COLD),
    ):
        lead.queue(message_id, channel=channel, step=None)
        lead.send(message_id)
    return lead


def journey_events(store, kind) -> list:
    return [r.event for r in store.read_stream("t1", "lead-1") if isinstance(r.event, kind)]


def assert_nothing_recorded(stack, store) -> None:
    assert inbox_rows(store.read_models) == []
    assert stack.queue.jobs == []


# --- Resend (Svix) ------------------------------------------------------------------------------


@pytest.mark.usefixtures("lead")
def test_a_delivery_signed_as_svix_signs_it_is_accepted_and_recorded(stack, store):
    """A valid Resend delivery is acknowledged 202, and becomes MessageDelivered."""
    body = resend_body("email.delivered")
    response = stack.client.post("/webhooks/resend", content=body, headers=svix_headers(body))
    assert response.status_code == 202
    stack.settle()
    [delivered] = journey_events(store, MessageDelivered)
    assert delivered.message_id == "m-warm"


def _tampered(body: bytes) -> bytes:
    changed = bytearray(body)
    changed[body.index(b"re-1") + 3] = ord("2")  # one byte of the email id
    return bytes(changed)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("one byte of body changed", "bad_signature"),
        ("stale timestamp", "stale_timestamp"),
        ("future timestamp", "stale_timestamp"),
        ("wrong secret", "bad_signature"),
        ("no headers", "missing_headers"),
    ],
)
@pytest.mark.usefixtures("lead")
def test_a_resend_event_that_fails_verification_is_refused_and_records_nothing(
    stack, store, case, reason
):
    """Tampered, stale, future, wrongly keyed or unsigned: 401, nothing recorded, one count."""
    body = resend_body("email.delivered")
    headers = svix_headers(body)
    if case == "one byte of body changed":
        body = _tampered(body)
    elif case == "stale timestamp":
        headers = svix_headers(body, at=NOW - timedelta(minutes=5, seconds=1))
    elif case == "future timestamp":
        headers = svix_headers(body, at=NOW + timedelta(minutes=5, seconds=1))
    elif case == "wrong secret":
        headers = svix_headers(body, secret="whsec_" + "QUJD" * 8)
    else:
        headers = {"content-type": "application/json"}
    response = stack.client.post("/webhooks/resend", content=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert stack.counters.value(REJECTED_COUNTER, provider="resend", reason=reason) == 1
    stack.settle()
    assert_nothing_recorded(stack, store)
    assert journey_events(store, MessageDelivered) == []


@pytest.mark.usefixtures("lead")
def test_a_timestamp_just_inside_the_tolerance_is_accepted(stack):
    """Five minutes off is still inside the window: clocks drift, Svix retries take time."""
    body = resend_body("email.delivered")
    headers = svix_headers(body, at=NOW - timedelta(minutes=5))
    assert stack.client.post("/webhooks/resend", content=body, headers=headers).status_code == 202


@pytest.mark.usefixtures("lead")
def test_the_same_resend_delivery_sent_five_times_records_one_event(stack, store):
    """Retries carry the same svix-id: one inbox row, one job, one journey event."""
    body = resend_body("email.delivered")
    headers = svix_headers(body)
    codes = [
        stack.client.post("/webhooks/resend", content=body, headers=headers).status_code
        for _ in range(5)
    ]
    assert codes == [202, 200, 200, 200, 200]
    stack.settle()
    assert len(stack.queue.jobs) == 1
    assert len(inbox_rows(store.read_models)) == 1
    assert len(journey_events(store, MessageDelivered)) == 1
    assert stack.counters.value(EVENTS_COUNTER, provider="resend", outcome="duplicate") == 4


# --- TimelinesAI (secret in the path or a header) ----------------------------------------------


@pytest.mark.parametrize("where", ["path", "header"])
@pytest.mark.usefixtures("lead")
def test_a_whatsapp_reply_with_the_secret_is_accepted_and_recorded(stack, store, where):
    """The secret works in the URL path or in X-Webhook-Secret; the reply joins the journey."""
    body = timelinesai_body("wa-in-1")
    if where == "path":
        response = stack.client.post(f"/webhooks/timelinesai/{TIMELINESAI_SECRET}", content=body)
    else:
        response = stack.client.post(
            "/webhooks/timelinesai", content=body, headers={"X-Webhook-Secret": TIMELINESAI_SECRET}
        )
    assert response.status_code == 202
    stack.settle()
    [reply] = journey_events(store, ReplyReceived)
    assert (reply.channel, reply.external_id) == (Channel.WHATSAPP, "wa-in-1")


@pytest.mark.parametrize(
    ("path", "headers", "reason"),
    [
        ("/webhooks/timelinesai/wrong-secret", {}, "bad_secret"),
        ("/webhooks/timelinesai", {"X-Webhook-Secret": TIMELINESAI_SECRET + "x"}, "bad_secret"),
        ("/webhooks/timelinesai", {}, "missing_secret"),
    ],
)
@pytest.mark.usefixtures("lead")
def test_a_whatsapp_event_without_the_right_secret_is_refused(stack, store, path, headers, reason):
    """A wrong or missing secret: 401, nothing recorded, counted by reason."""
    response = stack.client.post(path, content=timelinesai_body(), headers=headers)
    assert response.status_code == 401
    assert stack.counters.value(REJECTED_COUNTER, provider="timelinesai", reason=reason) == 1
    stack.settle()
    assert_nothing_recorded(stack, store)


@pytest.mark.usefixtures("lead")
def test_the_same_whatsapp_message_five_times_records_one_reply(stack, store):
    """One message uid, however often (and under both message event types): one reply."""
    url = f"/webhooks/timelinesai/{TIMELINESAI_SECRET}"
    bodies = [timelinesai_body("wa-in-1")] * 4 + [
        timelinesai_body("wa-in-1", event_type="message:new")
    ]
    codes = [stack.client.post(url, content=b).status_code for b in bodies]
    assert codes == [202, 200, 200, 200, 200]
    stack.settle()
    assert len(stack.queue.jobs) == 1
    assert len(journey_events(store, ReplyReceived)) == 1


@pytest.mark.usefixtures("lead")
def test_our_own_outbound_echo_is_acknowledged_and_skipped(stack, store):
    """A message we sent comes back as direction 'sent': 200, nothing recorded or queued."""
    body = timelinesai_body("wa-out-1", direction="sent", event_type="message:sent:new")
    response = stack.client.post(f"/webhooks/timelinesai/{TIMELINESAI_SECRET}", content=body)
    assert response.status_code == 200
    assert response.json() == {"status": "ignored"}
    stack.settle()
    assert_nothing_recorded(stack, store)


@pytest.mark.usefixtures("lead")
def test_an_unknown_number_is_acknowledged_and_counted_not_retried(stack, store):
    """A reply from a number no lead has: 202, then counted as unknown; the journey untouched."""
    body = timelinesai_body("wa-in-9", phone="+40799999999")
    response = stack.client.post(f"/webhooks/timelinesai/{TIMELINESAI_SECRET}", content=body)
    assert response.status_code == 202
    stack.settle()
    assert (
        stack.counters.value(
            "cerniq_webhook_processed_total", provider="timelinesai", outcome="unknown_lead"
        )
        == 1
    )
    assert journey_events(store, ReplyReceived) == []


# --- Instantly (secret custom header) ----------------------------------------------------------


@pytest.mark.usefixtures("lead")
def test_an_instantly_open_with_the_secret_header_is_recorded_once(stack, store):
    """Five deliveries of one open (same type, email id, timestamp): one MessageOpened."""
    body = instantly_body("email_opened")
    headers = {"X-Webhook-Secret": INSTANTLY_SECRET}
    codes = [
        stack.client.post("/webhooks/instantly", content=body, headers=headers).status_code
        for _ in range(5)
    ]
    assert codes == [202, 200, 200, 200, 200]
    stack.settle()
    [opened] = journey_events(store, MessageOpened)
    assert opened.message_id == "m-cold"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [({"X-Webhook-Secret": "in-secret-51bd03"}, "bad_secret"), ({}, "missing_secret")],
)
@pytest.mark.usefixtures("lead")
def test_an_instantly_event_without_the_right_secret_is_refused(stack, store, headers, reason):
    """A wrong or missing custom header: 401, nothing recorded, counted."""
    response = stack.client.post("/webhooks/instantly", content=instantly_body(), headers=headers)
    assert response.status_code == 401
    assert stack.counters.value(REJECTED_COUNTER, provider="instantly", reason=reason) == 1
    stack.settle()
    assert_nothing_recorded(stack, store)


# --- size and shape ----------------------------------------------------------------------------


def test_a_body_over_one_megabyte_is_refused_with_413(stack, store):
    """More than 1 MB is not read: 413 problem details, nothing recorded."""
    body = json.dumps({"event_type": "message:new", "pad": "x" * MB}).encode()
    response = stack.client.post(f"/webhooks/timelinesai/{TIMELINESAI_SECRET}", content=body)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    assert_nothing_recorded(stack, store)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"event_type": "email_opened", "timestamp": "t", ', "$"),
        (b'["not", "an", "object"]', "$"),
        (b'{"timestamp": "2026-03-02T08:00:00Z", "lead_email": "a@b.ro"}', "$.event_type"),
        (b'{"event_type": "email_opened", "timestamp": "t", "lead_email": 7}', "$.lead_email"),
        (b'{"event_type": "email_opened", "timestamp": "t"}', "$.lead_email"),
        (
            b'{"event_type": "email_opened", "timestamp": "t", "lead_email": "no-at"}',
            "$.lead_email",
        ),
    ],
)
def test_malformed_json_or_a_wrong_shape_is_a_400_naming_the_field(stack, store, body, field):
    """A verified body that cannot be read: 400 problem details with the field, nothing kept."""
    headers = {"X-Webhook-Secret": INSTANTLY_SECRET}
    response = stack.client.post("/webhooks/instantly", content=body, headers=headers)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 400
    assert [e["field"] for e in problem["errors"]] == [field]
    assert_nothing_recorded(stack, store)


def test_a_resend_event_without_its_email_id_names_the_field(stack, store):
    """Shapes are checked inside the envelope too: the path points into `data`."""
    body = json.dumps({"type": "email.delivered", "data": {"to": []}}).encode()
    response = stack.client.post("/webhooks/resend", content=body, headers=svix_headers(body))
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "$.data.email_id"
    assert_nothing_recorded(stack, store)


@pytest.mark.usefixtures("lead")
def test_a_queue_that_cannot_take_the_event_forgets_it_so_the_retry_gets_in(stack, store):
    """Enqueue fails: 503 with Retry-After and no inbox row; the provider's retry is accepted."""
    body = resend_body("email.delivered")
    headers = svix_headers(body)
    real = stack.queue.enqueue

    def broken(_job_name, _payload):
        raise ConnectionError("broker down")

    stack.queue.enqueue = broken
    response = stack.client.post("/webhooks/resend", content=body, headers=headers)
    assert response.status_code == 503
    assert "retry-after" in response.headers
    assert inbox_rows(store.read_models) == []
    stack.queue.enqueue = real
    assert stack.client.post("/webhooks/resend", content=body, headers=headers).status_code == 202
    stack.settle()
    assert len(journey_events(store, MessageDelivered)) == 1
