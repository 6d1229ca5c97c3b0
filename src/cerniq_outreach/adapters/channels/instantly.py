"""Cold email through Instantly's API v2 (shapes in `providers.md`).

Instantly has no idempotency keys. Adding leads is made safe to repeat by asking Instantly to
skip leads already in the campaign (`skip_if_in_campaign`), so a batch retried after a timeout
adds nobody twice; block-list entries are naturally idempotent. Creating a campaign is the one
call that could duplicate, so it is not replay-safe.

Our journeys know a lead by address; Instantly's lead operations need its own lead id, which
is looked up with `POST /api/v2/leads/list` (search by address within the campaign).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, TypeVar
from urllib.parse import quote, unquote

import msgspec

from cerniq_outreach.adapters.channels.http import HttpPolicy, ProviderHttp, convert_reply
from cerniq_outreach.application.channels import (
    CAMPAIGN_TIMEZONE,
    MAX_COLD_LEADS_PER_REQUEST,
    CampaignSpec,
    ColdLead,
    LeadsAdded,
    RequestRejected,
)
from cerniq_outreach.application.ports import Clock, RateLimiter
from cerniq_outreach.domain.rate_limit import INSTANTLY_LIMIT
from cerniq_outreach.settings import ProviderSettings

PROVIDER: Final = "instantly"
T = TypeVar("T")

# *Unconfirmed*: the lead `status` values of the v2 Lead schema as we read them (1 active,
# 2 paused); whether PATCH accepts `status` to pause and resume one lead is not documented in
# what we could check. If it does not, pause and resume fail with RequestRejected, loudly.
_LEAD_ACTIVE: Final = 1
_LEAD_PAUSED: Final = 2
# *Unconfirmed*: no documented maximum for bulk-create; batches as large as `leads/add` takes.
_MAX_BLOCK_VALUES: Final = 1000


class _AddReply(msgspec.Struct):
    # *Unconfirmed* field names beyond `leads_uploaded` and `in_blocklist` (providers.md
    # names "duplicates and skips" without their keys).
    leads_uploaded: int = 0
    in_blocklist: int = 0
    duplicated_leads: int = 0
    skipped_count: int = 0


class _Lead(msgspec.Struct):
    id: str
    email: str | None = None


class _LeadPage(msgspec.Struct):
    items: list[_Lead] = msgspec.field(default_factory=list)


class _Created(msgspec.Struct):
    id: str


class InstantlyChannel:
    """The `ColdEmailChannel` port over Instantly API v2."""

    def __init__(self, http: ProviderHttp) -> None:
        self._http = http

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def add_leads(self, campaign_id: str, leads: Sequence[ColdLead]) -> LeadsAdded:
        """Add leads in batches of 1,000; counts are summed over the batches.

        A failure part-way raises, with the earlier batches added; calling again with the
        same leads is safe because leads already in the campaign are skipped.
        """
        total = LeadsAdded()
        for batch in _batches(leads, MAX_COLD_LEADS_PER_REQUEST):
            body = {
                "campaign_id": campaign_id,
                "skip_if_in_campaign": True,
                "leads": [_lead_json(lead) for lead in batch],
            }
            reply = self._http.call("POST", "/api/v2/leads/add", body=body)
            counts = convert_reply(PROVIDER, reply, _AddReply)
            total = LeadsAdded(
                uploaded=total.uploaded + counts.leads_uploaded,
                in_blocklist=total.in_blocklist + counts.in_blocklist,
                duplicates=total.duplicates + counts.duplicated_leads,
                skipped=total.skipped + counts.skipped_count,
            )
        return total

    def pause_lead(self, campaign_id: str, email: str) -> None:
        """Pause the campaign for one lead (see the *unconfirmed* note on `_LEAD_PAUSED`)."""
        lead_id = self._require_lead(campaign_id, email)
        self._http.call("PATCH", f"/api/v2/leads/{lead_id}", body={"status": _LEAD_PAUSED})

    def resume_lead(self, campaign_id: str, email: str) -> None:
        """Let the campaign continue for a paused lead."""
        lead_id = self._require_lead(campaign_id, email)
        self._http.call("PATCH", f"/api/v2/leads/{lead_id}", body={"status": _LEAD_ACTIVE})

    def remove_lead(self, campaign_id: str, email: str) -> None:
        """Delete the lead from the campaign; a lead Instantly does not hold is a no-op."""
        lead_id = self._find_lead(campaign_id, email)
        if lead_id is not None:
            self._http.call("DELETE", f"/api/v2/leads/{lead_id}")

    def block(self, value: str) -> None:
        """Add one address or domain to the workspace block list."""
        self._http.call("POST", "/api/v2/block-lists-entries", body={"bl_value": value})

    def block_many(self, values: Sequence[str]) -> None:
        """Add many addresses or domains to the block list."""
        for batch in _batches(values, _MAX_BLOCK_VALUES):
            self._http.call(
                "POST", "/api/v2/block-lists-entries/bulk-create", body={"bl_values": batch}
            )

    def create_campaign(self, spec: CampaignSpec) -> str:
        """Create a campaign sending in Europe/Bucharest business hours; return its id."""
        window = spec.window
        schedule = {
            "name": "Business hours",
            "timing": {"from": window.start.strftime("%H:%M"), "to": window.end.strftime("%H:%M")},
            "days": {str(day): day in window.weekdays for day in range(7)},
            "timezone": CAMPAIGN_TIMEZONE,
        }
        body = {"name": spec.name, "campaign_schedule": {"schedules": [schedule]}}
        # Not replay-safe: a create repeated after a timeout could leave two campaigns.
        reply = self._http.call("POST", "/api/v2/campaigns", body=body, replay_safe=False)
        return convert_reply(PROVIDER, reply, _Created).id

    def activate_campaign(self, campaign_id: str) -> None:
        """Start the campaign (activating an active campaign changes nothing)."""
        self._http.call("POST", f"/api/v2/campaigns/{quote(campaign_id, safe='')}/activate")

    def lead_id(self, campaign_id: str, email: str) -> str | None:
        """Instantly's id of the lead with this address in the campaign, or None."""
        lead_id = self._find_lead(campaign_id, email)
        return None if lead_id is None else unquote(lead_id)

    def verify_credentials(self) -> None:
        """One cheap authenticated read (the first campaign), for `channels check`.

        *Unconfirmed*: that `GET /api/v2/campaigns?limit=1` is the cheapest call every API
        key scope may make; a key that may not list campaigns fails this check.

        Raises:
            ChannelError: `ProviderAuthError` when the key is refused.
        """
        self._http.call("GET", "/api/v2/campaigns", params={"limit": "1"})

    def _find_lead(self, campaign_id: str, email: str) -> str | None:
        body = {"campaign": campaign_id, "search": email, "limit": 10}
        page = convert_reply(
            PROVIDER, self._http.call("POST", "/api/v2/leads/list", body=body), _LeadPage
        )
        wanted = email.casefold()
        # Search matches names and parts of addresses too: only the exact address counts.
        matches = [lead.id for lead in page.items if (lead.email or "").casefold() == wanted]
        return quote(matches[0], safe="") if matches else None

    def _require_lead(self, campaign_id: str, email: str) -> str:
        lead_id = self._find_lead(campaign_id, email)
        if lead_id is None:
            raise RequestRejected(PROVIDER, "the lead is not in the campaign")
        return lead_id


def _lead_json(lead: ColdLead) -> dict[str, Any]:
    """A lead as Instantly takes it: unset fields left out rather than sent as null."""
    fields = msgspec.structs.asdict(lead)
    return {key: value for key, value in fields.items() if value is not None and value != {}}


def _batches(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def instantly_channel(
    settings: ProviderSettings,
    rate_limiter: RateLimiter,
    clock: Clock,
    *,
    policy: HttpPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> InstantlyChannel:
    """The live cold-email channel for these settings (the composition root calls this).

    Raises:
        ValueError: the settings hold no API key (the channel then runs in the sandbox).
    """
    if settings.api_key is None:
        raise ValueError("Instantly has no API key: use the sandbox channel")
    http = ProviderHttp(
        provider=PROVIDER,
        base_url=settings.base_url,
        api_key=settings.api_key,
        limit=INSTANTLY_LIMIT,
        rate_limiter=rate_limiter,
        clock=clock,
        policy=policy,
        sleep=sleep,
    )
    return InstantlyChannel(http)
