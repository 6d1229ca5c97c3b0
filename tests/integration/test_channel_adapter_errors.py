"""Provider failures reach the application as the error it acts on, retried only when safe.

Against the provider emulator over real HTTP, on simulated time: every wait the adapters
take goes through the injected sleep, so the tests assert the waits, never the wall clock.
"""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime

import pytest
from structlog.testing import capture_logs

from cerniq_outreach.adapters.channels.http import HttpPolicy
from cerniq_outreach.adapters.channels.resend import resend_channel
from cerniq_outreach.adapters.channels.timelinesai import timelinesai_channel
from cerniq_outreach.adapters.quota.memory import MemoryRateLimiter
from cerniq_outreach.application.channels import (
    InvalidRecipient,
    ProviderAuthError,
    RateLimited,
    TransientProviderError,
)
from cerniq_outreach.domain.rate_limit import RESEND_LIMIT, TIMELINESAI_LIMIT
from emulator import Fault
from emulator.fixtures import GrantingLimiter, warm_email

PHONE_FROM = "+40722123456"
PHONE_TO = "+40733000111"
# A client timeout far below the emulator's slow answer, so the timeout is certain.
SHORT_TIMEOUT = HttpPolicy(timeout=0.2, connect_timeout=2.0, max_attempts=3)


def send_whatsapp(channel):
    return channel.send_to_phone(from_phone=PHONE_FROM, to_phone=PHONE_TO, text="Bună ziua!")


# --- auth failure -----------------------------------------------------------------------------


# The adapter fixture of each provider and a call that reaches it.
CALLS = {
    "timelinesai": ("whatsapp", send_whatsapp),
    "instantly": ("cold", lambda channel: channel.block("stop@ferma.ro")),
    "resend": ("warm", lambda channel: channel.send(warm_email())),
}


@pytest.mark.parametrize("provider", sorted(CALLS))
def test_a_refused_key_is_an_auth_error_and_is_not_retried(provider, request, emulator, fake_time):
    """401/403 from any provider raise ProviderAuthError after a single request."""
    emulator.control.revoke(provider)
    fixture, call = CALLS[provider]
    channel = request.getfixturevalue(fixture)
    with pytest.raises(ProviderAuthError) as caught:
        call(channel)
    assert caught.value.provider == provider
    assert len(emulator.control.requests(provider)) == 1
    assert fake_time.sleeps == []


def test_a_wrong_key_is_refused_too(emulator, fake_time, limiter):
    """A key the provider does not know gives ProviderAuthError, and the key is never logged."""
    settings = emulator.settings("resend", api_key="re_wrong_key_42")
    channel = resend_channel(settings, limiter, fake_time.clock, sleep=fake_time.sleep)
    with capture_logs() as logs, pytest.raises(ProviderAuthError):
        channel.send(warm_email())
    channel.close()
    assert "re_wrong_key_42" not in repr(logs)


# --- invalid recipients -----------------------------------------------------------------------


def test_a_number_not_on_whatsapp_is_an_invalid_recipient_without_retry(
    whatsapp, emulator, fake_time
):
    """The send fails permanently after one request; the error does not show the number."""
    emulator.control.invalid_phones.add(PHONE_TO)
    with pytest.raises(InvalidRecipient) as caught:
        send_whatsapp(whatsapp)
    assert len(emulator.control.requests("timelinesai")) == 1
    assert fake_time.sleeps == []
    assert PHONE_TO not in str(caught.value)


def test_an_undeliverable_address_is_an_invalid_recipient_without_retry(warm, emulator, fake_time):
    """Resend's 422 on the `to` field is permanent; the echoed address is scrubbed."""
    emulator.control.invalid_emails.add("nu.exista@ferma.ro")
    with pytest.raises(InvalidRecipient) as caught:
        warm.send(warm_email(to="nu.exista@ferma.ro"))
    assert len(emulator.control.requests("resend")) == 1
    assert fake_time.sleeps == []
    assert "nu.exista@ferma.ro" not in str(caught.value)


# --- 429 and Retry-After ----------------------------------------------------------------------


def test_429_is_retried_after_the_announced_seconds(whatsapp, emulator, fake_time):
    """Retry-After: 7 makes the adapter wait exactly 7 s, then the send goes through."""
    emulator.control.fail_next("timelinesai", Fault.rate_limited("7"))
    result = send_whatsapp(whatsapp)
    assert fake_time.sleeps == [7.0]
    assert len(emulator.control.requests("timelinesai", "/messages")) == 2
    assert len(emulator.control.whatsapp_sent) == 1
    assert result.external_id in emulator.control.whatsapp_messages


def test_429_retry_after_as_an_http_date_is_honoured(warm, emulator, fake_time):
    """Retry-After given as an HTTP date 30 s ahead of the clock means a 30 s wait."""
    when = format_datetime(fake_time.clock.now() + timedelta(seconds=30), usegmt=True)
    emulator.control.fail_next("resend", Fault.rate_limited(when))
    warm.send(warm_email())
    assert fake_time.sleeps == [30.0]


def test_429_that_persists_becomes_rate_limited_with_the_time_to_come_back(
    warm, emulator, fake_time
):
    """After the last attempt, RateLimited carries `retry_at` = now + the announced wait."""
    emulator.control.fail_next("resend", Fault.rate_limited("5"), times=3)
    with pytest.raises(RateLimited) as caught:
        warm.send(warm_email())
    assert fake_time.sleeps == [5.0, 5.0]
    assert caught.value.retry_at == fake_time.clock.now() + timedelta(seconds=5)
    assert emulator.control.emails_sent == []


def test_a_retry_after_too_long_to_wait_is_handed_back_at_once(warm, emulator, fake_time):
    """A wait past the policy's maximum is not slept in the worker: RateLimited at once."""
    emulator.control.fail_next("resend", Fault.rate_limited("3600"))
    with pytest.raises(RateLimited) as caught:
        warm.send(warm_email())
    assert fake_time.sleeps == []
    assert caught.value.retry_at == fake_time.clock.now() + timedelta(hours=1)


# --- 5xx and timeouts -------------------------------------------------------------------------


def test_5xx_is_retried_with_bounded_backoff_then_transient(warm, emulator, fake_time):
    """Three 500s: two jittered backoffs within the exponential bound, then the error."""
    emulator.control.fail_next("resend", Fault.server_error(500), times=3)
    with pytest.raises(TransientProviderError):
        warm.send(warm_email())
    assert len(emulator.control.requests("resend")) == 3
    assert len(fake_time.sleeps) == 2
    assert all(0 <= wait <= bound for wait, bound in zip(fake_time.sleeps, (0.5, 1.0), strict=True))


def test_a_5xx_then_success_returns_the_result(cold, emulator):
    """One 503 is absorbed by a retry."""
    emulator.control.fail_next("instantly", Fault.server_error(503))
    cold.block("stop@ferma.ro")
    assert emulator.control.block_list == ["stop@ferma.ro"]


def test_a_timeout_on_an_idempotent_send_is_retried_then_transient(emulator, fake_time, limiter):
    """Slow answers past the timeout are retried (safe: the key dedupes), then give up."""
    emulator.control.fail_next("resend", Fault.slow(5.0), times=3)
    channel = resend_channel(
        emulator.settings("resend"),
        limiter,
        fake_time.clock,
        policy=SHORT_TIMEOUT,
        sleep=fake_time.sleep,
    )
    with pytest.raises(TransientProviderError) as caught:
        channel.send(warm_email())
    channel.close()
    assert caught.value.may_have_acted
    assert len(emulator.control.requests("resend")) == 3


def test_a_timeout_on_a_whatsapp_send_is_not_repeated(emulator, fake_time, limiter):
    """A WhatsApp send cannot be deduplicated: after a timeout it fails at once, flagged."""
    emulator.control.fail_next("timelinesai", Fault.slow(5.0))
    channel = timelinesai_channel(
        emulator.settings("timelinesai"),
        limiter,
        fake_time.clock,
        policy=SHORT_TIMEOUT,
        sleep=fake_time.sleep,
    )
    with pytest.raises(TransientProviderError) as caught:
        send_whatsapp(channel)
    channel.close()
    assert caught.value.may_have_acted
    assert len(emulator.control.requests("timelinesai")) == 1


def test_a_500_on_a_whatsapp_send_is_not_repeated_but_a_503_is(whatsapp, emulator):
    """A 500 may have sent the message; a 503 surely did not, so only the 503 is retried."""
    emulator.control.fail_next("timelinesai", Fault.server_error(503))
    send_whatsapp(whatsapp)
    assert len(emulator.control.requests("timelinesai")) == 2
    emulator.control.fail_next("timelinesai", Fault.server_error(500))
    with pytest.raises(TransientProviderError) as caught:
        send_whatsapp(whatsapp)
    assert caught.value.may_have_acted
    assert len(emulator.control.requests("timelinesai")) == 3


# --- the rate limiter -------------------------------------------------------------------------


def test_the_rate_limiter_is_asked_before_every_request_retries_included(
    whatsapp, emulator, limiter
):
    """One ask per HTTP request, on the workspace's bucket and TimelinesAI's limit."""
    emulator.control.fail_next("timelinesai", Fault.rate_limited("1"))
    send_whatsapp(whatsapp)
    whatsapp.accounts()
    assert len(limiter.calls) == len(emulator.control.requests("timelinesai")) == 3
    keys = {key for key, _, _ in limiter.calls}
    assert len(keys) == 1
    assert next(iter(keys)).startswith("timelinesai:")
    assert emulator.control.api_keys["timelinesai"] not in next(iter(keys))
    assert {limit for _, limit, _ in limiter.calls} == {TIMELINESAI_LIMIT}


def test_a_wait_from_the_rate_limiter_is_slept_before_the_request(emulator, fake_time):
    """The limiter's answer is waited out, then asked again, before anything is sent."""
    limiter = GrantingLimiter(waits=(1.5,))
    channel = timelinesai_channel(
        emulator.settings("timelinesai"), limiter, fake_time.clock, sleep=fake_time.sleep
    )
    send_whatsapp(channel)
    channel.close()
    assert fake_time.sleeps == [1.5]
    assert [at for _, _, at in limiter.calls][1] - limiter.calls[0][2] == timedelta(seconds=1.5)


def test_resend_sends_are_spaced_by_the_real_token_bucket(emulator, fake_time):
    """With the in-process limiter, a third send in the same instant waits for a token."""
    channel = resend_channel(
        emulator.settings("resend"), MemoryRateLimiter(), fake_time.clock, sleep=fake_time.sleep
    )
    for i in range(3):
        channel.send(warm_email(message_id=f"m-{i}"))
    channel.close()
    assert fake_time.sleeps == [pytest.approx(1 / RESEND_LIMIT.refill_per_second)]


# --- logs -------------------------------------------------------------------------------------


def test_logs_show_the_calls_but_no_secrets_or_personal_data(whatsapp, warm, emulator):
    """Each attempt is logged with its status; keys, numbers, addresses and texts are not."""
    with capture_logs() as logs:
        send_whatsapp(whatsapp)
        warm.send(warm_email())
        emulator.control.invalid_emails.add("nu.exista@ferma.ro")
        with pytest.raises(InvalidRecipient):
            warm.send(warm_email(message_id="m-2", to="nu.exista@ferma.ro"))
    calls = [line for line in logs if line["event"] == "provider_call"]
    assert [(c["provider"], c["status"]) for c in calls] == [
        ("timelinesai", 200),
        ("resend", 200),
        ("resend", 422),
    ]
    text = repr(logs)
    secrets = [emulator.control.api_keys["timelinesai"], emulator.control.api_keys["resend"]]
    personal = [PHONE_FROM, PHONE_TO, "Bună ziua", "ion.popescu@ferma-verde.ro"]
    personal += ["nu.exista@ferma.ro", "Popescu", "Oferta pentru ferma", "tok123"]
    assert [s for s in secrets + personal if s in text] == []
    assert any("request_body" in line for line in logs)
