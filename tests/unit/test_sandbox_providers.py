"""The sandbox provider: seeded outcomes on the simulated clock, as provider-shaped webhooks."""

from __future__ import annotations

import base64
import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from cerniq_outreach.adapters.channels.reply_corpus import ReplyKind, load_corpus
from cerniq_outreach.adapters.channels.sandbox import (
    SandboxProviders,
    SandboxRates,
    SandboxSecrets,
    whatsapp_key,
)
from cerniq_outreach.adapters.channels.sandbox_config import (
    ColdEmailRates,
    Delay,
    ReplyMix,
    WarmEmailRates,
    WhatsAppRates,
)
from cerniq_outreach.adapters.clock import SimulatedClock
from cerniq_outreach.application.channels import (
    ColdLead,
    InvalidRecipient,
    RequestRejected,
    WarmEmail,
)

START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
LATER = timedelta(days=5)  # past every default delay
SECRETS = SandboxSecrets(
    timelinesai="tl-secret",
    instantly="in-secret",
    resend="whsec_" + base64.b64encode(b"sandbox-test-key-0123456789").decode(),
)
OUR_PHONE = "+40722000001"
# Every outcome certain and nothing refused, no echoes: a test then knows what must arrive.
EVERYTHING = SandboxRates(
    whatsapp=WhatsAppRates(not_on_whatsapp=0, delivered=1, read=1, replied=1),
    cold_email=ColdEmailRates(bounced=0, opened=1, clicked=1, replied=1),
    warm_email=WarmEmailRates(bounced_hard=0, bounced_soft=0, opened=1, clicked=1, complained=1),
    echoes=False,
)

Hook = tuple[str, dict[str, str], bytes]


def sandbox(
    *, seed: int = 42, rates: SandboxRates | None = None
) -> tuple[SandboxProviders, SimulatedClock, list[Hook]]:
    clock = SimulatedClock(START, speed=0)
    hooks: list[Hook] = []
    providers = SandboxProviders(
        clock,
        seed=seed,
        rates=rates,
        secrets=SECRETS,
        deliver=lambda provider, headers, body: hooks.append((provider, dict(headers), body)),
    )
    return providers, clock, hooks


def warm(n: int, to: str | None = None) -> WarmEmail:
    return WarmEmail(
        tenant_id="acme",
        lead_id=f"lead-{n}",
        message_id=f"msg-{n}",
        sender="Cerniq <vanzari@cerniq.ro>",
        to=to or f"fermier{n}@agro-example.ro",
        subject="Ofertă pentru sezonul de primăvară",
        unsubscribe_url=f"https://cerniq.ro/u/{n}",
        html='<p>Bună ziua</p><a href="https://cerniq.ro/oferta">Vezi oferta</a>',
    )


def cold(n: int, email: str | None = None) -> ColdLead:
    return ColdLead(
        email=email or f"contact{n}@ferma-example.ro",
        company_name=f"Agro {n} SRL",
        custom_variables={
            "cerniq_tenant_id": "acme",
            "cerniq_lead_id": f"lead-{n}",
            "cerniq_message_id": f"cold-{n}",
        },
    )


def phone(n: int) -> str:
    return f"+4073{n:07d}"


def send_all(providers: SandboxProviders, numbers: list[int] | range) -> None:
    for n in numbers:
        with contextlib.suppress(InvalidRecipient):  # the default rates refuse a few numbers
            providers.whatsapp.send_to_phone(
                from_phone=OUR_PHONE, to_phone=phone(n), text=f"Salut {n}"
            )
        providers.warm_email.send(warm(n))
        providers.cold_email.add_leads("camp-1", [cold(n)])


def run(seed: int, numbers: list[int] | range) -> list[Hook]:
    providers, clock, hooks = sandbox(seed=seed)
    send_all(providers, numbers)
    clock.advance(LATER)
    providers.pump()
    return hooks


def bodies(hooks: list[Hook], provider: str) -> list[dict[str, Any]]:
    return [json.loads(body) for name, _, body in hooks if name == provider]


# --- determinism and time ---------------------------------------------------------------------


def test_the_same_seed_replays_the_same_webhooks_byte_for_byte():
    """Two sandboxes with one seed, given the same sends and clock, POST identical webhooks."""
    first = run(7, range(30))
    assert first == run(7, range(30))
    assert len(first) > 90


def test_a_messages_fate_does_not_depend_on_the_order_of_sends():
    """A message's outcomes come from (seed, message), not from what was sent before it."""
    forward = run(3, list(range(10)))
    backward = run(3, list(reversed(range(10))))
    assert sorted(forward, key=repr) == sorted(backward, key=repr)


def test_another_seed_gives_another_run():
    """The seed matters: another seed changes the outcomes."""
    assert run(1, range(30)) != run(2, range(30))


def test_pump_emits_nothing_before_its_time_and_everything_after():
    """An outcome is POSTed once the clock reaches it, never earlier, and only once."""
    providers, clock, hooks = sandbox(rates=EVERYTHING)
    providers.whatsapp.send_to_phone(from_phone=OUR_PHONE, to_phone=phone(1), text="Salut")
    assert providers.pump() == 0
    first = providers.next_due()
    assert first is not None
    assert first > START
    clock.set(first - timedelta(seconds=1))
    assert providers.pump() == 0
    clock.set(first)
    assert providers.pump() == 1
    clock.advance(LATER)
    assert providers.pump() == 2
    assert providers.pending() == 0
    assert providers.pump() == 0
    events = bodies(hooks, "timelinesai")
    assert [e["message"].get("status") for e in events] == ["delivered", "read", None]
    assert events[2]["message"]["direction"] == "received"


def test_pump_until_emits_in_time_order_up_to_the_horizon_only():
    """`pump(until=...)` stops at the horizon, and what it emits is in time order."""
    providers, _, hooks = sandbox(rates=EVERYTHING)
    for n in range(20):
        providers.warm_email.send(warm(n))
    horizon = START + timedelta(hours=3)
    emitted = providers.pump(until=horizon)
    assert emitted == len(hooks) > 0
    created = [e["created_at"] for e in bodies(hooks, "resend")]
    assert created == sorted(created)
    assert created[-1] <= "2025-03-03T12:00:00.000Z"
    assert providers.next_due() is not None
    assert providers.next_due() > horizon  # type: ignore[operator]


def test_echoes_of_our_own_sends_arrive_at_once():
    """Providers echo our own sends (`message:sent:new`, `email.sent`); so does the sandbox."""
    providers, clock, hooks = sandbox(rates=msgspec.structs.replace(EVERYTHING, echoes=True))
    send_all(providers, [1])
    providers.pump()
    assert [b["event_type"] for b in bodies(hooks, "timelinesai")] == ["message:sent:new"]
    assert [b["type"] for b in bodies(hooks, "resend")] == ["email.sent"]
    clock.advance(LATER)
    providers.pump()
    assert "email_sent" in [b["event_type"] for b in bodies(hooks, "instantly")]


# --- rates ------------------------------------------------------------------------------------


def test_default_whatsapp_rates_are_roughly_honoured():
    """Over 2,000 messages each share lands near its rate (exact for the seed, bounds wide)."""
    providers, clock, hooks = sandbox(seed=11)
    refused = 0
    for n in range(2000):
        try:
            providers.whatsapp.send_to_phone(
                from_phone=OUR_PHONE, to_phone=phone(n), text="Bună ziua"
            )
        except InvalidRecipient:
            refused += 1
    clock.advance(LATER)
    providers.pump()
    events = bodies(hooks, "timelinesai")
    delivered = sum(e["message"].get("status") == "delivered" for e in events)
    read = sum(e["message"].get("status") == "read" for e in events)
    replied = sum(e["message"]["direction"] == "received" for e in events)
    sent = 2000 - refused
    assert 0.02 < refused / 2000 < 0.065
    assert 0.93 < delivered / sent < 0.99
    assert 0.75 < read / delivered < 0.85
    assert 0.29 < replied / read < 0.41


def test_default_email_rates_are_roughly_honoured():
    """Bounces, opens and clicks of warm and cold email land near their rates."""
    providers, clock, hooks = sandbox(seed=12)
    for n in range(2000):
        providers.warm_email.send(warm(n))
    providers.cold_email.add_leads("camp-1", [cold(n) for n in range(2000)])
    clock.advance(LATER)
    providers.pump()
    resend = [e["type"] for e in bodies(hooks, "resend")]
    assert 0.005 < resend.count("email.bounced") / 2000 < 0.04
    assert 0.60 < resend.count("email.opened") / resend.count("email.delivered") < 0.70
    assert 0.19 < resend.count("email.clicked") / resend.count("email.opened") < 0.31
    instantly = [e["event_type"] for e in bodies(hooks, "instantly")]
    assert 0.03 < instantly.count("email_bounced") / 2000 < 0.07
    assert 0.45 < instantly.count("email_opened") / (2000 - instantly.count("email_bounced")) < 0.55
    replies = instantly.count("reply_received") + instantly.count("auto_reply_received")
    assert 0.11 < replies / 2000 < 0.19


def test_rates_of_zero_produce_nothing_but_the_sends():
    """With every rate at zero, messages are accepted and nothing comes back."""
    quiet = SandboxRates(
        whatsapp=WhatsAppRates(not_on_whatsapp=0, delivered=0),
        cold_email=ColdEmailRates(bounced=0, opened=0, replied=0, unsubscribed=0),
        warm_email=WarmEmailRates(bounced_hard=0, bounced_soft=0, opened=0, complained=0),
        echoes=False,
    )
    providers, clock, hooks = sandbox(rates=quiet)
    send_all(providers, range(50))
    clock.advance(LATER)
    providers.pump()
    # Resend still reports each delivery; nothing else arrives.
    assert {e["type"] for e in bodies(hooks, "resend")} == {"email.delivered"}
    assert len(hooks) == 50


def test_every_outcome_arrives_when_every_rate_is_one():
    """Rates of one give each channel its full chain of outcomes, each after its cause."""
    providers, clock, hooks = sandbox(rates=EVERYTHING)
    send_all(providers, [1])
    clock.advance(LATER)
    providers.pump()
    resend = [e["type"] for e in bodies(hooks, "resend")]
    assert resend[:2] == ["email.delivered", "email.opened"]
    assert sorted(resend[2:]) == ["email.clicked", "email.complained"]
    instantly = [e["event_type"] for e in bodies(hooks, "instantly")]
    assert instantly[0] == "email_opened"
    assert len(instantly) == 3
    assert "email_link_clicked" in instantly
    assert {"reply_received", "auto_reply_received"} & set(instantly)
    whatsapp = bodies(hooks, "timelinesai")
    assert [e["message"].get("status") for e in whatsapp] == ["delivered", "read", None]


def test_the_reply_mix_picks_the_kind_of_reply():
    """A mix of only opt-outs makes every reply an opt-out text of the corpus."""
    only_stop = ReplyMix(
        positive=0, neutral=0, negative=0, opt_out=1, complaint=0, out_of_office=0, wrong_person=0
    )
    rates = msgspec.structs.replace(
        EVERYTHING,
        whatsapp=WhatsAppRates(
            not_on_whatsapp=0, delivered=1, read=1, replied=1, reply_mix=only_stop
        ),
    )
    providers, clock, hooks = sandbox(rates=rates)
    for n in range(40):
        providers.whatsapp.send_to_phone(from_phone=OUR_PHONE, to_phone=phone(n), text="Salut")
    clock.advance(LATER)
    providers.pump()
    opt_outs = {r.text for r in load_corpus().of_kind(ReplyKind.OPT_OUT)}
    replies = [
        e["message"]["text"]
        for e in bodies(hooks, "timelinesai")
        if e["message"]["direction"] == "received"
    ]
    assert len(replies) == 40
    assert set(replies) <= opt_outs
    assert len(set(replies)) > 5  # picked across the corpus, not one line


def test_rates_outside_zero_to_one_are_refused():
    """A probability above one, a negative delay or an all-zero mix fails at construction."""
    with pytest.raises(ValueError, match="read"):
        WhatsAppRates(read=1.5)
    with pytest.raises(ValueError, match="bounced_hard"):
        WarmEmailRates(bounced_hard=0.7, bounced_soft=0.5)
    with pytest.raises(ValueError, match="delay"):
        Delay(min_seconds=10, max_seconds=5)
    with pytest.raises(ValueError, match="weight"):
        ReplyMix(
            positive=0,
            neutral=0,
            negative=0,
            opt_out=0,
            complaint=0,
            out_of_office=0,
            wrong_person=0,
        )


# --- send counts and idempotency --------------------------------------------------------------


def test_a_repeated_warm_email_returns_the_first_result_and_is_counted():
    """Resend idempotency: a repeated message id answers the first result and mails once."""
    providers, clock, hooks = sandbox(rates=EVERYTHING)
    first = providers.warm_email.send(warm(1))
    again = providers.warm_email.send(warm(1))
    assert again == first
    assert providers.sends("msg-1") == 2
    assert providers.warm_email.delivered_mails("msg-1") == 1
    assert providers.repeated_sends() == {"msg-1": 2}
    clock.advance(LATER)
    providers.pump()
    assert [e["type"] for e in bodies(hooks, "resend")].count("email.delivered") == 1


def test_after_the_idempotency_window_the_same_message_goes_out_again():
    """Resend keeps keys 24 hours; a resend after that is a second email, as it would be live."""
    providers, clock, _ = sandbox(rates=EVERYTHING)
    first = providers.warm_email.send(warm(1))
    clock.advance(timedelta(hours=24))
    second = providers.warm_email.send(warm(1))
    assert second.external_id != first.external_id
    assert providers.warm_email.delivered_mails("msg-1") == 2


def test_a_repeated_batch_returns_the_first_results():
    """A batch of the same message ids in the same order is answered from its key."""
    providers, _, _ = sandbox(rates=EVERYTHING)
    batch = [warm(n) for n in range(3)]
    first = providers.warm_email.send_batch(batch)
    assert providers.warm_email.send_batch(batch) == first
    assert [providers.sends(f"msg-{n}") for n in range(3)] == [2, 2, 2]
    assert [providers.warm_email.delivered_mails(f"msg-{n}") for n in range(3)] == [1, 1, 1]
    with pytest.raises(ValueError, match="batch"):
        providers.warm_email.send_batch([warm(n) for n in range(101)])


def test_one_message_sent_alone_and_in_a_batch_goes_out_twice():
    """A batch has its own key, so the counts expose a message sent by both paths."""
    providers, _, _ = sandbox(rates=EVERYTHING)
    providers.warm_email.send(warm(1))
    providers.warm_email.send_batch([warm(1), warm(2)])
    assert providers.warm_email.delivered_mails("msg-1") == 2
    assert providers.repeated_sends() == {"msg-1": 2}


def test_a_whatsapp_message_sent_twice_is_counted_by_recipient_and_text():
    """The WhatsApp port has no message id: the same text to the same number is the key."""
    providers, _, _ = sandbox(rates=EVERYTHING)
    a = providers.whatsapp.send_to_phone(from_phone=OUR_PHONE, to_phone=phone(1), text="Salut")
    b = providers.whatsapp.send_to_phone(from_phone=OUR_PHONE, to_phone=phone(1), text="Salut")
    providers.whatsapp.send_to_phone(from_phone=OUR_PHONE, to_phone=phone(1), text="Revin")
    assert a.external_id != b.external_id  # TimelinesAI cannot deduplicate: two messages
    assert providers.sends(whatsapp_key(phone(1), "Salut")) == 2
    assert providers.sends(whatsapp_key(phone(1), "Revin")) == 1
    assert providers.repeated_sends() == {whatsapp_key(phone(1), "Salut"): 2}


def test_sending_into_a_chat_counts_under_the_same_key():
    """A message sent by phone and again into the chat is the same message sent twice."""
    providers, _, _ = sandbox(rates=EVERYTHING)
    sent = providers.whatsapp.send_to_phone(from_phone=OUR_PHONE, to_phone=phone(1), text="Salut")
    chat_id = providers.whatsapp.message(sent.external_id).chat_id
    assert chat_id is not None
    providers.whatsapp.send_to_chat(chat_id=chat_id, text="Salut")
    assert providers.sends(whatsapp_key(phone(1), "Salut")) == 2
    with pytest.raises(RequestRejected):
        providers.whatsapp.send_to_chat(chat_id="999", text="Salut")


def test_a_lead_handed_to_a_campaign_twice_is_a_duplicate_and_counted_twice():
    """Instantly skips a lead already in the campaign; the count still shows the second call."""
    providers, _, _ = sandbox(rates=EVERYTHING)
    assert providers.cold_email.add_leads("camp-1", [cold(1), cold(2)]).uploaded == 2
    again = providers.cold_email.add_leads("camp-1", [cold(1)])
    assert (again.uploaded, again.duplicates) == (0, 1)
    assert providers.sends("cold-1") == 2
    assert providers.sends("cold-2") == 1


def test_nothing_sent_twice_in_an_ordinary_run():
    """Distinct messages, each sent once, leave no repeated key."""
    providers, _, _ = sandbox()
    for n in range(100):
        providers.warm_email.send(warm(n))
    providers.cold_email.add_leads("camp-1", [cold(n) for n in range(100)])
    assert providers.repeated_sends() == {}
    assert providers.sends("msg-99") == 1


# --- invalid recipients -----------------------------------------------------------------------


def test_numbers_that_cannot_be_on_whatsapp_raise_invalid_recipient():
    """The reserved range, a malformed number and the seeded share are refused, permanently."""
    providers, _, hooks = sandbox(rates=EVERYTHING)
    for bad in ("+40700012345", "0722 123 456", "+40"):
        with pytest.raises(InvalidRecipient):
            providers.whatsapp.send_to_phone(from_phone=OUR_PHONE, to_phone=bad, text="Salut")
    assert providers.sends(whatsapp_key("+40700012345", "Salut")) == 1  # the call still counts
    assert providers.pump() == 0
    assert hooks == []
    assert providers.pending() == 0


def test_a_number_not_on_whatsapp_stays_so_for_the_run():
    """The seeded share of unregistered numbers is a property of the number, not of a send."""
    providers, _, _ = sandbox(
        seed=5, rates=SandboxRates(whatsapp=WhatsAppRates(not_on_whatsapp=0.5))
    )
    fates = [providers.whatsapp.is_on_whatsapp(phone(n)) for n in range(200)]
    assert fates == [providers.whatsapp.is_on_whatsapp(phone(n)) for n in range(200)]
    assert 60 < fates.count(False) < 140
    unregistered = phone(fates.index(False))
    for _ in range(2):
        with pytest.raises(InvalidRecipient):
            providers.whatsapp.send_to_phone(from_phone=OUR_PHONE, to_phone=unregistered, text="x")


def test_an_unsendable_address_raises_invalid_recipient_and_fails_its_batch():
    """Resend refuses a malformed or `.invalid` address; in a batch nothing goes out."""
    providers, _, _ = sandbox(rates=EVERYTHING)
    with pytest.raises(InvalidRecipient):
        providers.warm_email.send(warm(1, to="nobody@ferma.invalid"))
    with pytest.raises(InvalidRecipient):
        providers.warm_email.send(warm(2, to="not-an-address"))
    with pytest.raises(InvalidRecipient):
        providers.warm_email.send_batch([warm(3), warm(4, to="x@y.invalid")])
    assert providers.warm_email.delivered_mails("msg-3") == 0
    assert providers.pending() == 0


def test_instantly_skips_unsendable_and_blocked_leads():
    """Instantly skips addresses it cannot send to and counts blocked ones apart."""
    providers, _, _ = sandbox(rates=EVERYTHING)
    providers.cold_email.block("ferma-blocata.ro")
    providers.cold_email.block("Ion@Agro.ro")
    added = providers.cold_email.add_leads(
        "camp-1",
        [
            cold(1, "a@ferma.invalid"),
            cold(2, "office@ferma-blocata.ro"),
            cold(3, "ion@agro.ro"),
            cold(4),
        ],
    )
    assert (added.uploaded, added.skipped, added.in_blocklist, added.duplicates) == (1, 1, 2, 0)


def test_a_whatsapp_send_is_found_in_its_chat_and_counted():
    """find_sent answers what a worker asks after a crash: did this text go to that number?"""
    providers, _, _ = sandbox(rates=EVERYTHING)
    assert (
        providers.whatsapp.find_sent(from_phone=OUR_PHONE, to_phone=phone(1), text="Salut") is None
    )
    sent = providers.whatsapp.send_to_phone(from_phone=OUR_PHONE, to_phone=phone(1), text="Salut")
    assert (
        providers.whatsapp.find_sent(from_phone=OUR_PHONE, to_phone=phone(1), text="Salut") == sent
    )
    assert providers.whatsapp.find_sent(from_phone=OUR_PHONE, to_phone=phone(1), text="Alt") is None
    assert providers.total_sends() == 1
