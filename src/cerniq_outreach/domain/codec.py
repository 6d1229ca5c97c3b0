"""Encoding and decoding of stored events, with upcasting of old schema versions.

One Encoder and one Decoder are built once and reused: building them is the costly part of
msgspec, and replay decodes millions of events.

Stored form: the event's JSON (including its `type` tag) plus the schema version it was
written with. Reading an event written at the current version is a single typed decode.
Reading an older one decodes to plain data, runs the registered upcasters in order
(version n -> n+1) and then converts to the current class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from cerniq_outreach.domain.events import EVENT_CLASSES, AnyEvent, BaseEvent

Payload = dict[str, Any]
Upcaster = Callable[[Payload], Payload]

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[AnyEvent] = msgspec.json.Decoder(AnyEvent)
_raw_decoder: msgspec.json.Decoder[Payload] = msgspec.json.Decoder(Payload)

# (event type, version it upgrades FROM) -> function returning the payload at version + 1.
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


class UnknownEventType(ValueError):
    """A stored event names a type this code does not know; replay must stop, not skip."""

    def __init__(self, event_type: str) -> None:
        super().__init__(f"unknown event type {event_type!r}")
        self.event_type = event_type


class EventDecodeError(ValueError):
    """A stored payload does not fit its event type, even after upcasting."""


def register_upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register `fn` to lift `event_type` payloads from `from_version` to the next version."""

    def register(fn: Upcaster) -> Upcaster:
        key = (event_type, from_version)
        if key in UPCASTERS:
            raise ValueError(f"an upcaster for {event_type} v{from_version} exists already")
        UPCASTERS[key] = fn
        return fn

    return register


def schema_version(event_type: str) -> int:
    """The version at which this code writes `event_type`."""
    try:
        return EVENT_CLASSES[event_type].SCHEMA_VERSION
    except KeyError:
        raise UnknownEventType(event_type) from None


def encode(event: BaseEvent) -> bytes:
    """The stored JSON of an event (its `type` tag included)."""
    return _encoder.encode(event)


def encode_data(event: BaseEvent) -> Payload:
    """The event as plain JSON-ready data, for export and API output."""
    return msgspec.to_builtins(event)  # type: ignore[no-any-return]


def decode(
    data: bytes | str, *, event_type: str | None = None, version: int | None = None
) -> AnyEvent:
    """Decode a stored event, upcasting it first when it was written at an older version.

    `event_type` (the log's column) is checked against the payload's own tag; `version`
    defaults to the current one.
    """
    if event_type is not None and event_type not in EVENT_CLASSES:
        raise UnknownEventType(event_type)
    current = schema_version(event_type) if event_type is not None else None
    if version is None or version == current:
        try:
            event = _decoder.decode(data)
        except msgspec.ValidationError as exc:
            _raise_for_unknown_tag(data)
            raise EventDecodeError(str(exc)) from exc
        if event_type is not None and event_type != type(event).__struct_config__.tag:
            raise EventDecodeError(f"payload is {type(event).__name__}, column says {event_type}")
        return event
    if event_type is None:
        raise EventDecodeError("an old-version payload needs its event type to be upcast")
    return upcast(_raw_decoder.decode(data), event_type=event_type, version=version)


def upcast(payload: Payload, *, event_type: str, version: int) -> AnyEvent:
    """Lift a plain payload written at `version` to the current class, then convert it."""
    target = schema_version(event_type)
    if version > target:
        raise EventDecodeError(f"{event_type} v{version} is newer than this code (v{target})")
    while version < target:
        step = UPCASTERS.get((event_type, version))
        if step is None:
            raise EventDecodeError(f"no upcaster for {event_type} v{version}")
        payload = step(payload)
        version += 1
    payload = {**payload, "type": event_type}
    try:
        return msgspec.convert(payload, AnyEvent)  # type: ignore[no-any-return]
    except msgspec.ValidationError as exc:
        raise EventDecodeError(str(exc)) from exc


def _raise_for_unknown_tag(data: bytes | str) -> None:
    """Turn msgspec's "invalid tag" into the error that names the unknown type."""
    try:
        raw = _raw_decoder.decode(data)
    except msgspec.DecodeError:
        return
    tag = raw.get("type")
    if isinstance(tag, str) and tag not in EVENT_CLASSES:
        raise UnknownEventType(tag)
