"""Reading provider events: identities for dedupe, echoes skipped, facts to journey commands."""

from __future__ import annotations

import json

import pytest

from cerniq_outreach.application.webhook_commands import AUTO_REPLY_SNOOZE, commands_for
from cerniq_outreach.application.webhook_events import (
    Fact,
    Ignored,
    LeadRef,
    Provider,
    ShapeError,
    WebhookFact,
    interpret,
)
from cerniq_outreach.domain import commands as c
from cerniq_outreach.domain.enums import BounceKind, Channel, OptOutScope, Priority, ReviewReason
from cerniq_outreach.domain.errors import UnknownMessage

from webhook_support import NOW, instantly_body, resend_body, timelinesai_body

LEAD = LeadRef(tenant_id="t1", lead_id="lead-1", message_id="m-1")


def read(provider: Provider, body: bytes, event_id: str | None = None) -> WebhookFact:
    fact = interpret(provider, body, event_id=event_id)
    assert isinstance(fact, WebhookFact)
    return fact


@pytest.mark.parametrize(
    ("kind", "bounce", "fact"),
    [
        ("email.delivered", None, Fact.DELIVERED),
        ("email.opened", None, Fact.OPENED),
        ("email.clicked", None, Fact.CLICKED),
        ("email.complained", None, Fact.COMPLAINT),
        ("email.bounced", {"type": "Permanent"}, Fact.BOUNCED_HARD),
        ("email.bounced", {"type": "Transient"}, Fact.BOUNCED_SOFT),
        ("email.bounced", {"type": "Undetermined"}, Fact.BOUNCED_HARD),
    ],
)
def test_resend_events_read_as_facts_with_the_svix_id_and_our_tags(kind, bounce, fact):
    """Each Resend type is its fact; tags locate tenant, lead and message; svix-id is the key."""
    extra = {"bounce": bounce} if bounce else {}
    read_fact = read(Provider.RESEND, resend_body(kind, **extra), "msg_1")
    assert read_fact.fact is fact
    assert read_fact.identity == "msg_1"
    loc = read_fact.locator
    assert (loc.tenant_id, loc.lead_id, loc.message_id) == ("t1", "lead-1", "m-warm")
    assert (loc.channel, loc.external_id) == (Channel.EMAIL_WARM, "re-1")


def test_resend_tags_as_a_list_of_name_value_pairs_are_read_too():
    """The API's tag shape ([{name, value}]) is accepted as well as the object shape."""
    body = json.dumps(
        {
            "type": "email.opened",
            "data": {"email_id": "e", "tags": [{"name": "lead_id", "value": "L"}]},
        }
    ).encode()
    assert read(Provider.RESEND, body, "msg_1").locator.lead_id == "L"


@pytest.mark.parametrize(
    "kind", ["email.sent", "email.delivery_delayed", "email.failed", "contact.created"]
)
def test_resend_types_that_change_no_journey_are_ignored(kind):
    """Sent is recorded by the send worker; delays, failures and contact events are skipped."""
    body = json.dumps({"type": kind, "data": {}}).encode()
    assert isinstance(interpret(Provider.RESEND, body, event_id="m"), Ignored)


def test_a_resend_event_needs_its_svix_id():
    """Without an identity there is no dedupe: the event is refused as malformed."""
    with pytest.raises(ShapeError) as caught:
        interpret(Provider.RESEND, resend_body(), event_id=None)
    assert caught.value.field == "svix-id"


def test_an_inbound_whatsapp_message_keys_on_its_uid_whatever_the_event_type():
    """message:new and message:received:new of one message are one event; phones are E.164."""
    first = read(Provider.TIMELINESAI, timelinesai_body("u1"))
    second = read(Provider.TIMELINESAI, timelinesai_body("u1", event_type="message:new"))
    assert first.identity == second.identity == "received:u1"
    assert first.fact is Fact.REPLY
    assert first.locator.lead_phone == "+40722123456"
    assert first.locator.our_phone == "+40744000111"
    assert (first.text, first.reply_id) == ("Bună ziua, ne interesează", "u1")


@pytest.mark.parametrize(
    ("direction", "event_type"),
    [("sent", "message:new"), ("received", "message:sent:new")],
)
def test_our_own_outbound_messages_are_ignored(direction, event_type):
    """Route on direction, not only the event type: our own sends come back as echoes."""
    body = timelinesai_body("u2", direction=direction, event_type=event_type)
    assert isinstance(interpret(Provider.TIMELINESAI, body), Ignored)


@pytest.mark.parametrize(("status", "fact"), [("delivered", Fact.DELIVERED), ("read", Fact.READ)])
def test_a_whatsapp_status_report_is_a_fact_about_our_message(status, fact):
    """Delivered and read reports find the message by its TimelinesAI uid."""
    body = timelinesai_body("u3", direction="sent", status=status, event_type="message:status")
    read_fact = read(Provider.TIMELINESAI, body)
    assert read_fact.fact is fact
    assert read_fact.identity == f"status:u3:{status}"
    assert read_fact.locator.external_id == "u3"


def test_whatsapp_account_events_are_ignored():
    """Chat and account events change no journey."""
    body = json.dumps({"event_type": "chat:created", "chat": {"phone": "+40722123456"}}).encode()
    assert isinstance(interpret(Provider.TIMELINESAI, body), Ignored)


def test_an_inbound_message_from_an_unreadable_number_is_malformed():
    """The sender's number must read as a phone number."""
    with pytest.raises(ShapeError) as caught:
        interpret(Provider.TIMELINESAI, timelinesai_body(phone="call me"))
    assert caught.value.field == "$.message.sender.phone"


@pytest.mark.parametrize(
    ("event_type", "fact"),
    [
        ("email_opened", Fact.OPENED),
        ("email_link_clicked", Fact.CLICKED),
        ("link_clicked", Fact.CLICKED),
        ("reply_received", Fact.REPLY),
        ("auto_reply_received", Fact.AUTO_REPLY),
        ("email_bounced", Fact.BOUNCED_HARD),
        ("lead_unsubscribed", Fact.UNSUBSCRIBED),
    ],
)
def test_instantly_events_key_on_type_email_id_and_timestamp(event_type, fact):
    """Instantly has no event id: (event_type, email_id or lead_email, timestamp) is one."""
    read_fact = read(Provider.INSTANTLY, instantly_body(event_type, email="Ion@Ferma.ro"))
    assert read_fact.fact is fact
    assert read_fact.identity == f"{event_type}:in-email-1:2026-03-02T08:00:00.000Z"
    assert read_fact.locator.lead_email == "ion@ferma.ro"


def test_an_instantly_event_without_email_id_keys_on_the_lead_address():
    """The lead's address stands in for a missing email id."""
    body = instantly_body("lead_unsubscribed", email_id=None)
    assert read(Provider.INSTANTLY, body).identity.startswith("lead_unsubscribed:ion@ferma.ro:")


@pytest.mark.parametrize("event_type", ["email_sent", "campaign_completed", "lead_interested"])
def test_instantly_events_that_change_no_journey_are_ignored(event_type):
    """email_sent was recorded at hand-off; campaign and lead-status events are skipped."""
    assert isinstance(interpret(Provider.INSTANTLY, instantly_body(event_type)), Ignored)


def fact_of(kind: Fact, channel: Channel = Channel.EMAIL_WARM) -> WebhookFact:
    from cerniq_outreach.application.webhook_events import Locator  # noqa: PLC0415

    return WebhookFact(
        provider=Provider.RESEND,
        identity="msg_1",
        fact=kind,
        locator=Locator(channel=channel),
        text="mulțumim",
        reply_id="r-1",
    )


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (
            Fact.DELIVERED,
            c.RecordDelivered(command_id="webhook:resend:msg_1", at=NOW, message_id="m-1"),
        ),
        (Fact.READ, c.RecordRead(command_id="webhook:resend:msg_1", at=NOW, message_id="m-1")),
        (Fact.OPENED, c.RecordOpened(command_id="webhook:resend:msg_1", at=NOW, message_id="m-1")),
        (
            Fact.CLICKED,
            c.RecordClicked(command_id="webhook:resend:msg_1", at=NOW, message_id="m-1"),
        ),
        (
            Fact.BOUNCED_HARD,
            c.RecordBounce(
                command_id="webhook:resend:msg_1", at=NOW, message_id="m-1", kind=BounceKind.HARD
            ),
        ),
        (
            Fact.BOUNCED_SOFT,
            c.RecordBounce(
                command_id="webhook:resend:msg_1", at=NOW, message_id="m-1", kind=BounceKind.SOFT
            ),
        ),
    ],
)
def test_message_facts_become_their_journey_command_with_a_stable_id(kind, expected):
    """Delivered, read, opened, clicked and bounces name the message; the id is the identity's."""
    assert commands_for(fact_of(kind), LEAD, NOW) == [expected]


def test_a_message_fact_without_a_known_message_is_refused():
    """No message found: UnknownMessage, which the processor counts instead of retrying."""
    with pytest.raises(UnknownMessage):
        commands_for(fact_of(Fact.DELIVERED), LeadRef(tenant_id="t1", lead_id="l"), NOW)


def test_replies_carry_text_and_provider_id_and_auto_replies_snooze():
    """A reply is ReceiveReply; an auto-reply also says until when the sequence waits."""
    [reply] = commands_for(fact_of(Fact.REPLY), LEAD, NOW)
    assert isinstance(reply, c.ReceiveReply)
    assert (reply.text, reply.external_id, reply.out_of_office_until) == ("mulțumim", "r-1", None)
    [auto] = commands_for(fact_of(Fact.AUTO_REPLY), LEAD, NOW)
    assert isinstance(auto, c.ReceiveReply)
    assert auto.out_of_office_until == NOW + AUTO_REPLY_SNOOZE


def test_an_unsubscribe_opts_out_of_the_channel_family_and_a_complaint_of_everything():
    """Unsubscribe: OptOut(EMAIL). Complaint: an URGENT review and OptOut(ALL)."""
    [unsubscribe] = commands_for(fact_of(Fact.UNSUBSCRIBED), LEAD, NOW)
    assert isinstance(unsubscribe, c.OptOut)
    assert unsubscribe.scope is OptOutScope.EMAIL
    review, opt_out = commands_for(fact_of(Fact.COMPLAINT), LEAD, NOW)
    assert isinstance(review, c.RequestReview)
    assert (review.reason, review.priority) == (ReviewReason.COMPLAINT, Priority.URGENT)
    assert isinstance(opt_out, c.OptOut)
    assert opt_out.scope is OptOutScope.ALL
    assert review.command_id != opt_out.command_id
