"""How rows of the events table become recorded events, and the append's own records."""

from __future__ import annotations

from datetime import UTC
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

import msgspec

from cerniq_outreach.adapters.eventstore import serialization
from cerniq_outreach.application.records import Metadata, RecordedEvent
from cerniq_outreach.domain import codec

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from cerniq_outreach.application.ports import PersonalDataVault
    from cerniq_outreach.domain.events import AnyEvent, BaseEvent

Row = tuple[Any, ...]

_metadata_json = msgspec.json.Encoder()
_metadata_decoder = msgspec.json.Decoder(Metadata)


def decode_rows(rows: Iterable[Row], vault: PersonalDataVault) -> Iterator[RecordedEvent]:
    """Rows of `postgres_sql.COLUMNS` to recorded events, one at a time: replay's hot loop.

    A generator: `export` hands each event on as it is decoded and never holds a batch
    of them, so they die young instead of piling into the garbage collector's oldest
    generation (whose full passes dominate a long replay).
    """
    from_row = serialization.from_row
    for (
        position,
        tx_id,
        tenant,
        stream,
        version,
        event_id,
        event_type,
        schema_version,
        data,
        sealed,
        meta,
        occurred_at,
        recorded_at,
    ) in rows:
        try:
            event = from_row(
                event_type=event_type,
                schema_version=schema_version,
                data=data,
                sealed=sealed,
                tenant_id=tenant,
                stream_id=stream,
                vault=vault,
            )
        except (codec.UnknownEventType, codec.EventDecodeError) as exc:
            # Replay stops here and must say where (as the other stores do).
            exc.add_note(
                f"stored at global position {position} ({tenant}/{stream} version {version})"
            )
            raise
        yield RecordedEvent(
            global_position=position,
            tx_id=tx_id,
            tenant_id=tenant,
            stream_id=stream,
            stream_version=version,
            event_id=event_id,
            event_type=event_type,
            schema_version=schema_version,
            occurred_at=occurred_at,
            recorded_at=recorded_at,
            metadata=decode_metadata(meta),
            event=event,
        )


def recorded(
    params: dict[str, Any], i: int, event: BaseEvent, row: Row, metadata: Metadata
) -> RecordedEvent:
    """The recorded form of the `i`-th event just inserted (for inline projections)."""
    position, tx_id, version, recorded_at = row
    return RecordedEvent(
        global_position=position,
        tx_id=tx_id,
        tenant_id=params["tenant"],
        stream_id=params["stream"],
        stream_version=version,
        event_id=event.event_id,
        event_type=params["types"][i],
        schema_version=params["schemas"][i],
        occurred_at=event.occurred_at.astimezone(UTC),  # as a read returns it
        recorded_at=recorded_at,
        metadata=metadata,
        event=cast("AnyEvent", event),
    )


def encode_metadata(metadata: Metadata) -> str:
    """Metadata as a JSON object without its empty fields (most events have none)."""
    fields = {k: v for k, v in msgspec.structs.asdict(metadata).items() if v is not None}
    return _metadata_json.encode(fields).decode()


@lru_cache(maxsize=4096)
def decode_metadata(raw: str) -> Metadata:
    """The metadata column's JSON as Metadata."""
    # Cached: a command's events share one metadata object, and most events carry none.
    return _metadata_decoder.decode(raw)
