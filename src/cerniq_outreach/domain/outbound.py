"""What may go out now: the questions every send decision asks of a journey state.

Used by `decide` (queueing and recording sends), by sequence scheduling and by the send
worker just before it calls a provider, so all three refuse for the same reasons.
"""

from __future__ import annotations

from cerniq_outreach.domain.enums import Channel, JourneyState, OptOutScope, opt_out_scope_of
from cerniq_outreach.domain.journey import EMAIL_CHANNELS, Journey


def is_opted_out(state: Journey, channel: Channel) -> bool:
    """Whether an opt-out covers `channel` (an ALL opt-out covers every channel)."""
    if OptOutScope.ALL in state.opted_out:
        return True
    scope = opt_out_scope_of(channel)
    return scope is not None and scope in state.opted_out


def reachable(state: Journey, channel: Channel) -> bool:
    """Whether the lead has a usable, not objected-to address for `channel`."""
    company = state.company
    if company is None or is_opted_out(state, channel):
        return False
    if channel is Channel.WHATSAPP:
        return bool(company.phone) and not state.whatsapp_invalid
    if channel in EMAIL_CHANNELS:
        return bool(company.email) and not state.email_invalid
    return True  # PHONE and MANUAL are a person's own doing


def has_channel_left(state: Journey) -> bool:
    """Whether WhatsApp or email can still reach the lead."""
    return reachable(state, Channel.WHATSAPP) or reachable(state, Channel.EMAIL_COLD)


def whatsapp_cost(state: Journey) -> int:
    """Quota cost of the next WhatsApp message: 1 for a new contact, 0 for a follow-up.

    A WhatsApp message already queued and still pending counts as the first contact, so
    two messages queued back to back never both cost a new conversation.
    """
    if state.whatsapp_contacted:
        return 0
    pending = any(m.channel is Channel.WHATSAPP and m.pending for m in state.messages.values())
    return 0 if pending else 1


def outbound_refusal(state: Journey, channel: Channel, *, automated: bool) -> str | None:
    """Why nothing may go out on `channel` now, or None when a message may.

    Human messages (not `automated`) pass pause, human control and review — they are how a
    person takes over — but never an opt-out, a dead address or a DEAD journey.
    """
    if not state.enrolled:
        return "the lead is not enrolled"
    if state.stage is JourneyState.DEAD:
        return "the journey is DEAD"
    return channel_refusal(state, channel, automated=automated) or (
        automation_refusal(state) if automated else None
    )


def channel_refusal(state: Journey, channel: Channel, *, automated: bool) -> str | None:
    """Why `channel` in particular is closed for this lead (the others may still be open)."""
    if is_opted_out(state, channel):
        return f"the lead opted out of {channel}"
    if not reachable(state, channel):
        return f"no usable address for {channel}"
    if automated and channel is Channel.EMAIL_COLD and state.replied:
        return "the lead replied: no cold email after a reply"
    return None


def automation_refusal(state: Journey) -> str | None:
    """Why automation may not write to this lead on any channel now, or None."""
    if not state.enrolled:
        return "the lead is not enrolled"
    if state.terminal:
        return f"the journey is {state.stage}"
    if state.stage is JourneyState.PAUSED:
        return "the journey is PAUSED"
    if state.controlled_by is not None:
        return f"{state.controlled_by} controls the conversation"
    if state.under_review:
        return "the journey is under human review"
    return None
