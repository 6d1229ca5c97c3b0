"""The provider timeout bounds a whole attempt, not each read: a trickling reply times out.

httpx bounds each socket operation; the emulator's trickle switch answers at once and then
sends the body one byte at a time, each byte well inside the per-read bound, so only a total
deadline per attempt can end it. Outcomes are asserted (the error, the attempts), never times.
"""

from __future__ import annotations

import pytest

from cerniq_outreach.adapters.channels.http import HttpPolicy
from cerniq_outreach.adapters.channels.resend import resend_channel
from cerniq_outreach.adapters.channels.timelinesai import timelinesai_channel
from cerniq_outreach.application.channels import TransientProviderError
from emulator import Fault
from emulator.fixtures import warm_email

# Each byte comes far inside the 0.5 s bound; the whole body would take about 10 s.
TOTAL = HttpPolicy(timeout=0.5, connect_timeout=2.0, max_attempts=3)
EVERY = 0.05
ACCOUNTS = {
    "status": "ok",
    "data": {
        "whatsapp_accounts": [
            {"id": f"4072212345{i}@s.whatsapp.net", "phone": f"+4072212345{i}", "status": "active"}
            for i in range(3)
        ]
    },
}


def whatsapp_on(emulator, fake_time, limiter, policy=TOTAL):
    return timelinesai_channel(
        emulator.settings("timelinesai"),
        limiter,
        fake_time.clock,
        policy=policy,
        sleep=fake_time.sleep,
    )


def test_a_trickling_reply_to_a_read_times_out_and_is_retried_then_transient(
    emulator, fake_time, limiter
):
    """A read whose reply trickles past the total is retried (replay-safe), then gives up."""
    emulator.control.fail_next("timelinesai", Fault.trickling(ACCOUNTS, EVERY), times=3)
    channel = whatsapp_on(emulator, fake_time, limiter)
    with pytest.raises(TransientProviderError) as caught:
        channel.accounts()
    channel.close()
    assert caught.value.may_have_acted
    assert len(emulator.control.requests("timelinesai", "/whatsapp_accounts")) == 3
    assert len(fake_time.sleeps) == 2  # backed off between the three attempts


def test_a_trickling_reply_to_a_whatsapp_send_fails_at_once_flagged(emulator, fake_time, limiter):
    """A send the provider may have acted on is not repeated after a total-deadline timeout."""
    reply = {"status": "ok", "data": {"message_uid": "m-" + "0" * 200}}
    emulator.control.fail_next("timelinesai", Fault.trickling(reply, EVERY))
    channel = whatsapp_on(emulator, fake_time, limiter)
    with pytest.raises(TransientProviderError) as caught:
        channel.send_to_phone(from_phone="+40722123456", to_phone="+40733000111", text="Salut")
    channel.close()
    assert caught.value.may_have_acted
    assert len(emulator.control.requests("timelinesai", "/messages")) == 1


def test_a_trickling_idempotent_send_is_retried_and_succeeds_once_the_provider_answers(
    emulator, fake_time, limiter
):
    """Resend's keyed send is retried after a trickle timeout and the next answer counts."""
    emulator.control.fail_next("resend", Fault.trickling({"id": "e-" + "1" * 200}, EVERY))
    channel = resend_channel(
        emulator.settings("resend"), limiter, fake_time.clock, policy=TOTAL, sleep=fake_time.sleep
    )
    result = channel.send(warm_email())
    channel.close()
    assert result.external_id == emulator.control.emails_sent[0]["id"]
    assert len(emulator.control.requests("resend", "/emails")) == 2


def test_a_reply_that_trickles_in_within_the_total_is_read_whole(emulator, fake_time, limiter):
    """Streaming the body against the deadline still reads a slow-but-timely reply intact."""
    emulator.control.fail_next("timelinesai", Fault.trickling(ACCOUNTS, 0.001))
    generous = HttpPolicy(timeout=30.0, connect_timeout=2.0, max_attempts=1)
    channel = whatsapp_on(emulator, fake_time, limiter, policy=generous)
    accounts = channel.accounts()
    channel.close()
    assert [a.phone for a in accounts] == ["+40722123450", "+40722123451", "+40722123452"]
