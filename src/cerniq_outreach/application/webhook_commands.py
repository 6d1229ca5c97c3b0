"""Provider facts to the journey commands of `domain.md` (pure).

Command ids derive from the event identity (`WebhookFact.command_id`), so the events they
produce have stable ids and a redelivered webhook that slipped past the inbox still appends
nothing twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from cerniq_outreach.application.webhook_events import MESSAGE_FACTS, Fact, LeadRef, WebhookFact
from cerniq_outreach.domain.commands import (
    AnyCommand,
    OptOut,
    ReceiveReply,
    RecordBounce,
    RecordClicked,
    RecordDelivered,
    RecordOpened,
    RecordRead,
    RequestReview,
)
from cerniq_outreach.domain.enums import (
    BounceKind,
    OptOutScope,
    Priority,
    ReviewReason,
    opt_out_scope_of,
)
from cerniq_outreach.domain.errors import UnknownMessage
from cerniq_outreach.domain.templates import content_hash

AUTO_REPLY_SNOOZE: Final = timedelta(days=7)
"""How long an Instantly auto-reply snoozes the sequence when no return date is known.

domain.md: an out-of-office pauses "until the return date when one can be read from the
text, otherwise for a default period"; reading the date is the reply analyser's work.
"""


def commands_for(fact: WebhookFact, lead: LeadRef, at: datetime) -> list[AnyCommand]:
    """The journey commands `fact` stands for (more than one for a complaint).

    Raises `UnknownMessage` for a message fact whose message could not be found.
    """
    cid, channel = fact.command_id, fact.locator.channel
    if fact.fact in MESSAGE_FACTS:
        if lead.message_id is None:
            raise UnknownMessage(f"{fact.provider} {fact.fact} names no message we sent")
        return [_message_command(fact.fact, cid, at, lead.message_id)]
    if fact.fact in {Fact.REPLY, Fact.AUTO_REPLY}:
        return [
            ReceiveReply(
                command_id=cid,
                at=at,
                channel=channel,
                external_id=fact.reply_id or fact.identity,
                text=fact.text,
                content_hash=content_hash(fact.text, None),
                out_of_office_until=at + AUTO_REPLY_SNOOZE
                if fact.fact is Fact.AUTO_REPLY
                else None,
            )
        ]
    if fact.fact is Fact.UNSUBSCRIBED:
        scope = opt_out_scope_of(channel) or OptOutScope.ALL
        return [OptOut(command_id=cid, at=at, scope=scope, source=f"{fact.provider} unsubscribe")]
    # A complaint (marked as spam): an URGENT review for a person, and no more writing at all.
    return [
        RequestReview(
            command_id=f"{cid}/review",
            at=at,
            reason=ReviewReason.COMPLAINT,
            priority=Priority.URGENT,
        ),
        OptOut(
            command_id=f"{cid}/opt-out",
            at=at,
            scope=OptOutScope.ALL,
            source=f"{fact.provider} complaint",
        ),
    ]


def _message_command(fact: Fact, cid: str, at: datetime, message_id: str) -> AnyCommand:
    if fact is Fact.DELIVERED:
        return RecordDelivered(command_id=cid, at=at, message_id=message_id)
    if fact is Fact.READ:
        return RecordRead(command_id=cid, at=at, message_id=message_id)
    if fact is Fact.OPENED:
        return RecordOpened(command_id=cid, at=at, message_id=message_id)
    if fact is Fact.CLICKED:
        return RecordClicked(command_id=cid, at=at, message_id=message_id)
    kind = BounceKind.HARD if fact is Fact.BOUNCED_HARD else BounceKind.SOFT
    return RecordBounce(command_id=cid, at=at, message_id=message_id, kind=kind)
