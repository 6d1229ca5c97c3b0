"""The channel ports: what the application asks of WhatsApp, cold email and warm email.

Each Protocol is implemented by a live adapter (TimelinesAI, Instantly, Resend over httpx) and
by the sandbox. Adapters translate every provider failure into one of the `ChannelError`
classes below, because the application decides what to do by the class alone:

| error                    | the application                                             |
|--------------------------|-------------------------------------------------------------|
| `ProviderAuthError`      | stops the channel and alerts a person; retrying cannot help |
| `InvalidRecipient`       | marks the contact; never retries the message                |
| `RateLimited`            | retries at `retry_at`                                       |
| `TransientProviderError` | retries later; if `may_have_acted`, checks before resending |
| `RequestRejected`        | records the failure; a defect or misconfiguration, no retry |

Error messages never carry personal data or secrets: callers log them as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time
from typing import Final, Protocol

import msgspec

MAX_COLD_LEADS_PER_REQUEST: Final = 1000
"""Instantly takes at most 1,000 leads per `leads/add` call (the adapter batches)."""

MAX_WARM_BATCH: Final = 100
"""Resend takes at most 100 emails per batch call."""

CAMPAIGN_TIMEZONE: Final = "Europe/Bucharest"
"""Cold-email campaigns send on Romanian business hours."""


# --- the error taxonomy -----------------------------------------------------------------------


class ChannelError(Exception):
    """A provider call failed; the subclass says what the application should do about it.

    Attributes:
        provider: `timelinesai`, `instantly`, `resend` or `sandbox`.
        detail: what went wrong, without personal data or secrets.
    """

    def __init__(self, provider: str, detail: str) -> None:
        super().__init__(f"{provider}: {detail}")
        self.provider = provider
        self.detail = detail


class ProviderAuthError(ChannelError):
    """The provider refused our credentials (401/403): stop the channel and alert."""


class InvalidRecipient(ChannelError):
    """The recipient cannot receive messages (not on WhatsApp, invalid address): permanent."""


class RequestRejected(ChannelError):
    """The provider refused the request itself (a 4xx other than the above): permanent.

    It means a defect or a misconfiguration (an unknown campaign id, a malformed field), so
    repeating the same request would fail the same way.
    """


class RateLimited(ChannelError):
    """The provider (or our own token bucket) asks us to wait: retry at `retry_at` (UTC)."""

    def __init__(self, provider: str, detail: str, *, retry_at: datetime) -> None:
        super().__init__(provider, detail)
        self.retry_at = retry_at


class TransientProviderError(ChannelError):
    """A network error, a timeout or a 5xx that outlasted the retries: retry later.

    `may_have_acted` is True when the provider may have carried out the request before the
    failure (a timeout after the request was sent, a 500 on a send without an idempotency
    key): before sending the same message again the application should check, for example in
    the chat history, that it did not go out.
    """

    def __init__(self, provider: str, detail: str, *, may_have_acted: bool = False) -> None:
        super().__init__(provider, detail)
        self.may_have_acted = may_have_acted


# --- shared results ---------------------------------------------------------------------------


class SendResult(msgspec.Struct, frozen=True, kw_only=True):
    """A message the provider accepted, with the provider's id for it (for webhooks)."""

    provider: str
    external_id: str


# --- WhatsApp ---------------------------------------------------------------------------------


class WhatsAppMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One WhatsApp message as the provider knows it."""

    uid: str
    chat_id: str | None = None
    status: str | None = None
    from_me: bool = False
    timestamp: str | None = None
    text: str | None = None


class StatusChange(msgspec.Struct, frozen=True, kw_only=True):
    """One step of a message's delivery history (`Sent`, `Delivered`, `Read`, ...)."""

    status: str
    timestamp: str | None = None


class WhatsAppAccount(msgspec.Struct, frozen=True, kw_only=True):
    """A linked WhatsApp number of the workspace and whether it is connected."""

    account_id: str
    phone: str
    status: str


class WhatsAppChannel(Protocol):
    """Sends and reads WhatsApp messages through a pool of linked numbers."""

    def send_to_phone(
        self, *, from_phone: str, to_phone: str, text: str, label: str | None = None
    ) -> SendResult:
        """Send `text` to `to_phone` (E.164) from the pool number `from_phone` (E.164).

        The sending number is always explicit: the quota guardian reserved that number, and
        letting the provider pick one would spend another number's quota.
        """
        ...

    def send_to_chat(self, *, chat_id: str, text: str) -> SendResult:
        """Send `text` into an existing chat (it goes out from the chat's own number)."""
        ...

    def message(self, message_uid: str) -> WhatsAppMessage:
        """One message's details, e.g. to confirm an inbound webhook before acting on it."""
        ...

    def status_history(self, message_uid: str) -> list[StatusChange]:
        """How a message's delivery status changed, oldest first."""
        ...

    def chat_messages(self, chat_id: str) -> list[WhatsAppMessage]:
        """The messages of a chat as the provider returns them (its most recent page)."""
        ...

    def accounts(self) -> list[WhatsAppAccount]:
        """Every linked number of the workspace with its connection status."""
        ...

    def find_sent(self, *, from_phone: str, to_phone: str, text: str) -> SendResult | None:
        """The message with exactly `text` sent from `from_phone` to `to_phone`, if any.

        TimelinesAI takes no idempotency key, so a send that may have happened (a worker
        died after the call, a timeout after the request left) is checked here, in the
        chat's history, before the message is sent again.
        """
        ...


# --- cold email -------------------------------------------------------------------------------

CustomValue = str | int | float | bool | None
"""Instantly custom variables are flat: no lists or objects."""


class ColdLead(msgspec.Struct, frozen=True, kw_only=True):
    """A lead handed to a cold-email campaign, with its personalisation."""

    email: str
    first_name: str | None = None
    last_name: str | None = None
    company_name: str | None = None
    phone: str | None = None
    website: str | None = None
    personalization: str | None = None
    custom_variables: dict[str, CustomValue] = msgspec.field(default_factory=dict)


class LeadsAdded(msgspec.Struct, frozen=True, kw_only=True):
    """What the provider did with the leads handed to it, summed over every batch."""

    uploaded: int = 0
    in_blocklist: int = 0
    duplicates: int = 0
    skipped: int = 0


class SendingWindow(msgspec.Struct, frozen=True, kw_only=True):
    """When a campaign may send: `start`..`end` local time on `weekdays` (0 = Sunday)."""

    start: time
    end: time
    weekdays: frozenset[int] = frozenset({1, 2, 3, 4, 5})


class CampaignSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A cold-email campaign to create; it sends in `CAMPAIGN_TIMEZONE`."""

    name: str
    window: SendingWindow


class ColdEmailChannel(Protocol):
    """Hands leads to cold-email campaigns and keeps the provider's block list in step."""

    def add_leads(self, campaign_id: str, leads: Sequence[ColdLead]) -> LeadsAdded:
        """Add leads to a campaign, in batches of `MAX_COLD_LEADS_PER_REQUEST`.

        Leads already in the campaign are skipped, so a retried call adds nobody twice.
        """
        ...

    def pause_lead(self, campaign_id: str, email: str) -> None:
        """Stop the campaign's follow-ups to one lead for now (a reply, a review)."""
        ...

    def resume_lead(self, campaign_id: str, email: str) -> None:
        """Let the campaign's follow-ups to a paused lead continue."""
        ...

    def remove_lead(self, campaign_id: str, email: str) -> None:
        """Take a lead out of the campaign for good (an unknown lead is not an error)."""
        ...

    def block(self, value: str) -> None:
        """Put an address or a domain on the workspace block list (opt-outs, suppressions)."""
        ...

    def block_many(self, values: Sequence[str]) -> None:
        """Put many addresses or domains on the block list in one call."""
        ...

    def create_campaign(self, spec: CampaignSpec) -> str:
        """Create a campaign (not yet sending); return its provider id."""
        ...

    def activate_campaign(self, campaign_id: str) -> None:
        """Start a campaign sending on its schedule."""
        ...


# --- warm email -------------------------------------------------------------------------------


class WarmEmail(msgspec.Struct, frozen=True, kw_only=True):
    """One warm email, tied to the journey message it carries out.

    `message_id` makes the send idempotent (the adapter derives the provider's idempotency
    key from it) and, with `tenant_id` and `lead_id`, comes back in the provider's webhooks.
    `unsubscribe_url` is the one-click (RFC 8058) opt-out link every warm email carries.
    """

    tenant_id: str
    lead_id: str
    message_id: str
    sender: str
    to: str
    subject: str
    unsubscribe_url: str
    html: str | None = None
    text: str | None = None
    reply_to: str | None = None
    unsubscribe_mailto: str | None = None


class WarmEmailChannel(Protocol):
    """Sends warm (transactional-grade) email, exactly once per message id."""

    def send(self, email: WarmEmail) -> SendResult:
        """Send one email; sending the same `message_id` again returns the first result."""
        ...

    def send_batch(self, emails: Sequence[WarmEmail]) -> list[SendResult]:
        """Send up to `MAX_WARM_BATCH` emails in one call, results in the same order.

        The batch is idempotent as a whole: the same message ids in the same order return the
        first results.
        """
        ...
