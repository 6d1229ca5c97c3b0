"""The sandbox's cold email: the `ColdEmailChannel` port, answering as Instantly would.

A lead handed to a campaign is counted by its message id (the `cerniq_message_id` custom
variable the cold-email step sets), then filtered as Instantly filters: an address it cannot
send to is skipped (`.invalid` domains, RFC 2606, stand for those), a blocked one is counted
`in_blocklist`, and one already in the campaign is a duplicate (`skip_if_in_campaign`).

An accepted lead's first email leaves after a seeded delay, unless by then the lead was
paused, removed or blocked (Instantly checks at send time); then it may bounce, or be opened,
clicked, replied to (out-of-office replies arrive as `auto_reply_received`) or lead to an
unsubscribe. Campaign schedules and activation are not modelled: every campaign sends.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from cerniq_outreach.adapters.channels.reply_corpus import ReplyKind
from cerniq_outreach.adapters.channels.sandbox_core import SandboxCore, Webhook
from cerniq_outreach.adapters.channels.sandbox_webhooks import iso_time, shared_secret_webhook
from cerniq_outreach.application.channels import (
    CampaignSpec,
    ColdLead,
    LeadsAdded,
    RequestRejected,
)

SANDBOX: Final = "sandbox"
PROVIDER: Final = "instantly"
MESSAGE_ID_VARIABLE: Final = "cerniq_message_id"
"""The custom variable that carries our message id (and comes back in every webhook)."""
SENDING_ACCOUNT: Final = "outreach@sandbox.cerniq.invalid"
_BOUNCE_AFTER: Final = timedelta(seconds=90)


def cold_key(campaign_id: str, lead: ColdLead) -> str:
    """The send-count key of a lead handed to a campaign: our message id when it has one."""
    message_id = lead.custom_variables.get(MESSAGE_ID_VARIABLE)
    if isinstance(message_id, str) and message_id:
        return message_id
    return f"instantly:{campaign_id}:{lead.email.casefold()}"


def _domain(address: str) -> str:
    return address.rpartition("@")[2].casefold()


def _sendable(address: str) -> bool:
    local, at, domain = address.partition("@")
    return bool(local and at and "." in domain and not domain.casefold().endswith(".invalid"))


@dataclass(slots=True)
class _Lead:
    lead: ColdLead
    key: str
    email_id: str
    campaign_id: str
    campaign_name: str
    status: str = "active"  # active | paused | removed
    sent: bool = False


@dataclass(slots=True)
class _Campaign:
    name: str
    active: bool
    leads: dict[str, _Lead]


class SandboxColdEmail:
    """The `ColdEmailChannel` port in the sandbox."""

    def __init__(self, core: SandboxCore) -> None:
        self._core = core
        self._campaigns: dict[str, _Campaign] = {}
        self._blocked: set[str] = set()
        self._workspace = core.make_id("instantly-workspace")

    def add_leads(self, campaign_id: str, leads: Sequence[ColdLead]) -> LeadsAdded:
        """Add leads to a campaign; every lead counts as one send call of its message id."""
        uploaded = in_blocklist = duplicates = skipped = 0
        with self._core.lock:
            campaign = self._campaign(campaign_id)
            for lead in leads:
                key = cold_key(campaign_id, lead)
                ordinal = self._core.count_send(key)
                address = lead.email.casefold()
                if not _sendable(lead.email):
                    skipped += 1
                elif self._is_blocked(address):
                    in_blocklist += 1
                elif address in campaign.leads:
                    duplicates += 1
                else:
                    uploaded += 1
                    email_id = self._core.make_id("instantly-email", key, str(ordinal))
                    state = _Lead(lead, key, email_id, campaign_id, campaign.name)
                    campaign.leads[address] = state
                    self._schedule(state, ordinal)
        return LeadsAdded(
            uploaded=uploaded, in_blocklist=in_blocklist, duplicates=duplicates, skipped=skipped
        )

    def pause_lead(self, campaign_id: str, email: str) -> None:
        """Pause one lead (an email not yet sent then stays unsent)."""
        self._require(campaign_id, email).status = "paused"

    def resume_lead(self, campaign_id: str, email: str) -> None:
        """Resume a paused lead."""
        self._require(campaign_id, email).status = "active"

    def remove_lead(self, campaign_id: str, email: str) -> None:
        """Take a lead out of the campaign; an unknown lead is not an error."""
        with self._core.lock:
            campaign = self._campaigns.get(campaign_id)
            state = campaign.leads.pop(email.casefold(), None) if campaign else None
            if state is not None:
                state.status = "removed"

    def block(self, value: str) -> None:
        """Block an address or a whole domain."""
        with self._core.lock:
            self._blocked.add(value.casefold().removeprefix("@"))

    def block_many(self, values: Sequence[str]) -> None:
        """Block many addresses or domains."""
        for value in values:
            self.block(value)

    def lead_id(self, campaign_id: str, email: str) -> str | None:
        """The sandbox's id for the lead's email in the campaign, or None."""
        with self._core.lock:
            campaign = self._campaigns.get(campaign_id)
            state = campaign.leads.get(email.casefold()) if campaign else None
            return None if state is None else state.email_id

    def is_blocked(self, address: str) -> bool:
        """Whether the block list holds the address or its domain."""
        with self._core.lock:
            return self._is_blocked(address.casefold())

    def create_campaign(self, spec: CampaignSpec) -> str:
        """Create a campaign; its id is stable for a seed and a name."""
        with self._core.lock:
            ordinal = str(len(self._campaigns))  # a second campaign of one name is another
            campaign_id = self._core.make_id("instantly-campaign", spec.name, ordinal)
            self._campaigns[campaign_id] = _Campaign(spec.name, active=False, leads={})
            return campaign_id

    def activate_campaign(self, campaign_id: str) -> None:
        """Mark a campaign active (the sandbox sends for every campaign regardless)."""
        with self._core.lock:
            campaign = self._campaigns.get(campaign_id)
            if campaign is None:
                raise RequestRejected(SANDBOX, "campaign not found")
            campaign.active = True

    # --- internals ----------------------------------------------------------------------------

    def _campaign(self, campaign_id: str) -> _Campaign:
        # A campaign configured on a sequence step but never created here is taken as given:
        # the demo's steps name campaigns that exist in a real workspace.
        campaign = self._campaigns.get(campaign_id)
        if campaign is None:
            campaign = _Campaign(f"Campaign {campaign_id[:8]}", active=True, leads={})
            self._campaigns[campaign_id] = campaign
        return campaign

    def _require(self, campaign_id: str, email: str) -> _Lead:
        with self._core.lock:
            campaign = self._campaigns.get(campaign_id)
            state = campaign.leads.get(email.casefold()) if campaign else None
            if state is None:
                raise RequestRejected(SANDBOX, "the lead is not in the campaign")
            return state

    def _is_blocked(self, address: str) -> bool:
        return address in self._blocked or _domain(address) in self._blocked

    def _schedule(self, state: _Lead, ordinal: int) -> None:
        core = self._core
        rates = core.rates.cold_email
        now = core.clock.now()
        rng = core.rng("instantly", state.key, str(ordinal))
        # Fixed draw order whatever the outcome (see sandbox_whatsapp).
        bounced = rng.random() < rates.bounced
        opened = rng.random() < rates.opened
        clicked = rng.random() < rates.clicked
        replied = rng.random() < rates.replied
        unsubscribed = rng.random() < rates.unsubscribed
        sent_at = now + rates.send_delay.draw(rng)
        opened_at = sent_at + rates.engagement_delay.draw(rng)
        clicked_at = opened_at + rates.engagement_delay.draw(rng)
        replied_at = (opened_at if opened else sent_at) + rates.reply_delay.draw(rng)
        unsubscribed_at = opened_at + rates.engagement_delay.draw(rng)
        reply = core.corpus.pick(rates.reply_mix.choose(rng), rng)
        reply_id = core.make_id("instantly-reply", state.key, str(ordinal))

        def emit(event_type: str, at: datetime, **extra: Any) -> None:  # noqa: ANN401
            core.schedule(
                at,
                f"instantly:{state.email_id}",
                lambda _at: self._event(state, event_type, at, extra),
            )

        # Always scheduled, echo or not: it decides whether the email leaves at all.
        core.schedule(
            sent_at,
            f"instantly:{state.email_id}",
            lambda _at: self._sent(state, sent_at),
        )
        if bounced:
            emit("email_bounced", sent_at + _BOUNCE_AFTER)
            return
        if opened:
            emit("email_opened", opened_at)
            if clicked:
                emit("email_link_clicked", clicked_at)
        if replied:
            auto = reply.kind is ReplyKind.OUT_OF_OFFICE
            emit(
                "auto_reply_received" if auto else "reply_received",
                replied_at,
                email_id=reply_id,
                reply_text=reply.text,
                reply_html=f"<div>{html.escape(reply.text)}</div>",
                reply_subject=f"Re: {state.campaign_name}",
            )
        elif unsubscribed:
            emit("lead_unsubscribed", unsubscribed_at)

    def _sent(self, state: _Lead, at: datetime) -> Webhook | None:
        with self._core.lock:
            address = state.lead.email.casefold()
            state.sent = state.status == "active" and not self._is_blocked(address)
        if not state.sent or not self._core.rates.echoes:
            return None
        return self._payload(state, "email_sent", at, {})

    def _event(
        self, state: _Lead, event_type: str, at: datetime, extra: dict[str, Any]
    ) -> Webhook | None:
        if not state.sent:
            return None  # the email never left: nothing can happen to it
        return self._payload(state, event_type, at, extra)

    def _payload(
        self, state: _Lead, event_type: str, at: datetime, extra: dict[str, Any]
    ) -> Webhook:
        payload: dict[str, Any] = {
            # The lead's custom variables come back flat; documented fields win on a clash.
            **state.lead.custom_variables,
            "event_type": event_type,
            "timestamp": iso_time(at),
            "workspace": self._workspace,
            "campaign_id": state.campaign_id,
            "campaign_name": state.campaign_name,
            "lead_email": state.lead.email,
            "email_account": SENDING_ACCOUNT,
            "step": 1,
            "variant": 1,
            "is_first": True,
            "email_id": state.email_id,
            **extra,
        }
        return shared_secret_webhook(PROVIDER, self._core.secrets.instantly, payload)
