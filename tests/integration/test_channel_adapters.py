"""The live channel adapters speak each provider's API correctly, over real HTTP.

Every test runs against the provider emulator on loopback. Time is simulated: the adapters
sleep through an injected function that only advances the clock, so waits are asserted
exactly (the fixtures are in `emulator/fixtures.py`).
"""

from __future__ import annotations

from datetime import time

import pytest

from cerniq_outreach.adapters.channels.resend import idempotency_key
from cerniq_outreach.application.channels import CampaignSpec, ColdLead, SendingWindow
from emulator.fixtures import warm_email

# --- WhatsApp (TimelinesAI) -------------------------------------------------------------------


def test_whatsapp_send_always_names_the_sending_number(whatsapp, emulator):
    """A send to a phone carries the recipient, the text and the pool number that sends it."""
    result = whatsapp.send_to_phone(
        from_phone="+40722123456", to_phone="+40733000111", text="Bună ziua!", label="seq-1"
    )
    [request] = emulator.control.requests("timelinesai", "/messages")
    assert request.method == "POST"
    assert request.body == {
        "phone": "+40733000111",
        "whatsapp_account_phone": "+40722123456",
        "text": "Bună ziua!",
        "label": "seq-1",
    }
    assert request.headers["authorization"] == "Bearer " + emulator.control.api_keys["timelinesai"]
    assert result.provider == "timelinesai"
    assert result.external_id in emulator.control.whatsapp_messages


def test_whatsapp_reads_messages_history_chats_and_accounts(whatsapp):
    """Message details, status history, a chat's messages and the linked numbers are read."""
    sent = whatsapp.send_to_phone(from_phone="+40722123456", to_phone="+40733000111", text="Salut")
    message = whatsapp.message(sent.external_id)
    assert (message.uid, message.from_me, message.status) == (sent.external_id, True, "Sent")
    assert [c.status for c in whatsapp.status_history(sent.external_id)] == ["Sent", "Delivered"]
    reply = whatsapp.send_to_chat(chat_id=message.chat_id, text="Revin cu detalii")
    chat = whatsapp.chat_messages(message.chat_id)
    assert {m.uid for m in chat} == {sent.external_id, reply.external_id}
    [account] = whatsapp.accounts()
    assert (account.account_id, account.status) == ("40722123456@s.whatsapp.net", "active")


# --- cold email (Instantly) -------------------------------------------------------------------


def test_whatsapp_finds_a_message_it_sent_before_sending_it_again(whatsapp, emulator):
    """After a crash, a send is looked for in the chat between the two numbers: found once."""
    sent = whatsapp.send_to_phone(from_phone="+40744000111", to_phone="+40722123456", text="Salut")
    found = whatsapp.find_sent(from_phone="+40744000111", to_phone="+40722123456", text="Salut")
    assert found == sent
    other_text = whatsapp.find_sent(
        from_phone="+40744000111", to_phone="+40722123456", text="Altceva"
    )
    assert other_text is None
    assert (
        whatsapp.find_sent(from_phone="+40744000111", to_phone="+40799999999", text="Salut") is None
    )
    queried = [r for r in emulator.control.requests("timelinesai") if r.path == "/chats"]
    assert queried
    assert all(r.headers.get("x-query-phone") for r in queried)


def test_cold_leads_go_in_batches_of_at_most_1000_and_are_never_added_twice(cold, emulator):
    """2,500 leads make three calls (1000, 1000, 500); handing them over again adds nobody."""
    leads = [
        ColdLead(
            email=f"fermier{i}@example.ro",
            first_name="Ion",
            company_name="Agro SRL",
            custom_variables={"judet": "Timiș", "hectare": i},
        )
        for i in range(2500)
    ]
    added = cold.add_leads("camp-1", leads)
    batches = emulator.control.requests("instantly", "/api/v2/leads/add")
    assert [len(r.body["leads"]) for r in batches] == [1000, 1000, 500]
    assert batches[0].body["leads"][3]["custom_variables"] == {"judet": "Timiș", "hectare": 3}
    assert "last_name" not in batches[0].body["leads"][0]
    assert added.uploaded == 2500
    again = cold.add_leads("camp-1", leads[:10])
    assert (again.uploaded, again.skipped) == (0, 10)


def test_cold_lead_pause_resume_and_remove(cold, emulator):
    """A lead is found by address, paused, resumed and removed; removing it twice is a no-op."""
    cold.add_leads("camp-1", [ColdLead(email="maria@agro.ro")])
    [lead_id] = emulator.control.leads
    cold.pause_lead("camp-1", "Maria@agro.ro")
    assert emulator.control.leads[lead_id]["status"] == 2
    cold.resume_lead("camp-1", "maria@agro.ro")
    assert emulator.control.leads[lead_id]["status"] == 1
    cold.remove_lead("camp-1", "maria@agro.ro")
    cold.remove_lead("camp-1", "maria@agro.ro")
    assert emulator.control.leads == {}


def test_block_list_takes_single_and_bulk_entries(cold, emulator):
    """Opt-outs reach the block list one at a time or in bulk."""
    cold.block("stop@ferma.ro")
    cold.block_many(["a@ferma.ro", "ferma-rea.ro"])
    assert emulator.control.block_list == ["stop@ferma.ro", "a@ferma.ro", "ferma-rea.ro"]
    [bulk] = emulator.control.requests("instantly", "/api/v2/block-lists-entries/bulk-create")
    assert bulk.body == {"bl_values": ["a@ferma.ro", "ferma-rea.ro"]}


def test_campaign_is_created_on_a_bucharest_schedule_and_activated(cold, emulator):
    """The schedule is Europe/Bucharest with its hours and a day map keyed "0".."6"."""
    window = SendingWindow(start=time(9, 0), end=time(17, 30), weekdays=frozenset({1, 2, 3}))
    campaign_id = cold.create_campaign(CampaignSpec(name="Fermieri Q2", window=window))
    cold.activate_campaign(campaign_id)
    [schedule] = emulator.control.campaigns[campaign_id]["campaign_schedule"]["schedules"]
    assert schedule["timezone"] == "Europe/Bucharest"
    assert schedule["timing"] == {"from": "09:00", "to": "17:30"}
    assert schedule["days"] == {str(d): d in {1, 2, 3} for d in range(7)}
    assert emulator.control.campaigns[campaign_id]["status"] == 1


# --- warm email (Resend) ----------------------------------------------------------------------


def test_warm_email_carries_idempotency_key_tags_and_one_click_unsubscribe(warm, emulator):
    """The key comes from the message id; tags carry the ids; both unsubscribe headers are set."""
    email = warm_email(message_id="msg.01HZX/7")
    result = warm.send(email)
    [request] = emulator.control.requests("resend", "/emails")
    assert request.headers["idempotency-key"] == idempotency_key("msg.01HZX/7")
    assert request.body["tags"] == [
        {"name": "tenant_id", "value": "acme"},
        {"name": "lead_id", "value": "lead-7"},
        {"name": "message_id", "value": "msg_01HZX_7"},
    ]
    assert request.body["headers"] == {
        "List-Unsubscribe": "<https://cerniq.ro/u/tok123>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert request.body["to"] == ["ion.popescu@ferma-verde.ro"]
    assert result.external_id == emulator.control.emails_sent[0]["id"]


def test_warm_email_sent_twice_with_one_message_id_goes_out_once(warm, emulator):
    """A repeated send gets the first response back and the provider sends one email."""
    first = warm.send(warm_email())
    second = warm.send(warm_email())
    assert second == first
    assert len(emulator.control.requests("resend", "/emails")) == 2
    assert len(emulator.control.emails_sent) == 1


def test_warm_batch_returns_results_in_order_and_is_idempotent(warm, emulator):
    """A batch of three gives three ids in order; the same batch again sends nothing new."""
    emails = [warm_email(message_id=f"m-{i}", to=f"fermier{i}@agro.ro") for i in range(3)]
    results = warm.send_batch(emails)
    assert [r.external_id for r in results] == [e["id"] for e in emulator.control.emails_sent]
    assert warm.send_batch(emails) == results
    assert len(emulator.control.emails_sent) == 3
    with pytest.raises(ValueError, match=r"1\.\.100"):
        warm.send_batch([warm_email(message_id=f"m-{i}") for i in range(101)])
