"""How an event becomes a stored row and back, shared by every event store adapter.

The `data` column holds the event's full JSON (its tag and envelope fields included), so
the common read path is one typed msgspec decode. Personal fields are taken out before
storing: they stand as a placeholder in `data` and travel encrypted, with the lead's key,
in the `sealed` column. Reading puts them back, or marks them erased once the key is gone.

Only journey events (`Event`) can carry personal data: they belong to a lead, whose key
seals them. Phone-pool events hold the tenant's own business data (its numbers, labels and
accounts) and no lead to seal with, so they are stored in clear whatever their type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from cerniq_outreach.domain import codec, personal
from cerniq_outreach.domain.events import Event, event_type_name

if TYPE_CHECKING:
    from cerniq_outreach.application.ports import PersonalDataVault
    from cerniq_outreach.domain.events import AnyEvent, BaseEvent

_json = msgspec.json.Encoder()
_raw = msgspec.json.Decoder(dict[str, Any])

# Envelope fields kept in their own columns; `events export` prints `data` without them.
ENVELOPE_FIELDS = frozenset({"type", "event_id", "tenant_id", "lead_id", "occurred_at"})


class StoredRow(msgspec.Struct, frozen=True, kw_only=True):
    """The columns of one event row that come from the event itself."""

    event_id: str
    event_type: str
    schema_version: int
    data: bytes
    sealed: bytes | None


def to_row(event: BaseEvent, vault: PersonalDataVault) -> StoredRow:
    """Encode an event for storage, sealing a journey event's personal fields with its key."""
    event_type = event_type_name(event)
    sealed: bytes | None = None
    if isinstance(event, Event) and personal.has_personal_data(event_type):
        public, private = personal.split(event_type, codec.encode_data(event))
        data = _json.encode(public)
        if private:
            sealed = vault.seal(event.tenant_id, event.lead_id, private)
    else:
        data = codec.encode(event)
    return StoredRow(
        event_id=event.event_id,
        event_type=event_type,
        schema_version=codec.schema_version(event_type),
        data=data,
        sealed=sealed,
    )


def from_row(
    *,
    event_type: str,
    schema_version: int,
    data: bytes | str,
    sealed: bytes | None,
    tenant_id: str,
    stream_id: str,
    vault: PersonalDataVault,
) -> AnyEvent:
    """Decode a stored row, opening its sealed personal fields (or marking them erased)."""
    if sealed is None and not personal.has_personal_data(event_type):
        return codec.decode(data, event_type=event_type, version=schema_version)
    payload = _raw.decode(data)
    opened = vault.open(tenant_id, stream_id, sealed) if sealed is not None else {}
    payload = personal.merge(event_type, payload, opened)
    if schema_version == codec.schema_version(event_type):
        return codec.decode(_json.encode(payload), event_type=event_type)
    return codec.upcast(payload, event_type=event_type, version=schema_version)


def export_data(event: BaseEvent) -> dict[str, Any]:
    """The event's own fields (envelope left out), for `events export`."""
    return {k: v for k, v in codec.encode_data(event).items() if k not in ENVELOPE_FIELDS}
