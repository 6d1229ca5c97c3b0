"""What a demo run did, read back from the log alone: per day, per phone, final states.

Days are local calendar days of the tenant's business hours. A WhatsApp `MessageSent` with
quota cost 1 is a new contact, with cost 0 a follow-up; emails count per channel; replies,
reviews and opt-outs count when recorded. Final states fold each journey's `StateChanged`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

from cerniq_outreach.domain.enums import Channel, JourneyState
from cerniq_outreach.domain.events import (
    Event,
    LeadEnrolled,
    MessageSent,
    OptedOut,
    ReplyReceived,
    ReviewRequested,
    StateChanged,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from cerniq_outreach.application.records import RecordedEvent
    from cerniq_outreach.domain.business_hours import BusinessHours

DAY_KEYS = (
    "new_contacts",
    "follow_ups",
    "emails_cold",
    "emails_warm",
    "replies",
    "reviews",
    "opt_outs",
)


_EMAIL_KINDS = {Channel.EMAIL_COLD: "emails_cold", Channel.EMAIL_WARM: "emails_warm"}
_LEAD_KINDS: dict[type[Event], str] = {
    ReplyReceived: "replies",
    ReviewRequested: "reviews",
    OptedOut: "opt_outs",
}


def _day_kind(event: Event) -> str | None:
    """Which per-day count `event` adds to, if any."""
    if isinstance(event, MessageSent):
        if event.channel is Channel.WHATSAPP:
            return "new_contacts" if event.quota_cost else "follow_ups"
        return _EMAIL_KINDS.get(event.channel)
    return _LEAD_KINDS.get(type(event))


def summarise(
    records: Iterable[RecordedEvent], hours: BusinessHours, phone_numbers: dict[str, str]
) -> dict[str, Any]:
    """The run's summary as JSON-ready values (see the module doc)."""
    days: dict[str, Counter[str]] = defaultdict(Counter)
    phones: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    states: dict[str, JourneyState] = {}
    events = 0
    for record in records:
        event = record.event
        if not isinstance(event, Event):
            continue
        events += 1
        day = hours.local_date(event.occurred_at).isoformat()
        kind = _day_kind(event)
        if kind is not None:
            days[day][kind] += 1
            if isinstance(event, MessageSent) and event.phone_id is not None:
                phones[event.phone_id][day][kind] += 1
        if isinstance(event, LeadEnrolled):
            states[record.stream_id] = JourneyState.COLD
        elif isinstance(event, StateChanged):
            states[record.stream_id] = event.to_state
    return {
        "events": events,
        "leads": len(states),
        "days": [{"date": d, **{k: days[d][k] for k in DAY_KEYS}} for d in sorted(days)],
        "phones": [
            {
                "phone_id": phone_id,
                "number": phone_numbers.get(phone_id),
                "new_contacts": sum(c["new_contacts"] for c in by_day.values()),
                "follow_ups": sum(c["follow_ups"] for c in by_day.values()),
                "days": [
                    {
                        "date": d,
                        "new_contacts": by_day[d]["new_contacts"],
                        "follow_ups": by_day[d]["follow_ups"],
                    }
                    for d in sorted(by_day)
                ],
            }
            for phone_id, by_day in sorted(
                phones.items(), key=lambda item: phone_numbers.get(item[0], item[0])
            )
        ],
        "final_states": {s.value: n for s, n in sorted(Counter(states.values()).items())},
    }
