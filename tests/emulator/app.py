"""The emulator as a plain ASGI app: `/{provider}/...` routes to that provider's handlers.

No framework: the app is small, and a bare ASGI callable keeps uvicorn the only moving part
(no lifespan, no websockets) in integration tests that turn every warning into an error.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from emulator.control import Control, Fault, Recorded
from emulator.routes import HANDLERS, auth_failure


class EmulatorApp:
    """Records each request, then answers with a queued fault, an auth failure or the API."""

    def __init__(self, control: Control) -> None:
        self.control = control

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # no lifespan or websockets are configured
            return
        provider, _, path = scope["path"].lstrip("/").partition("/")
        path = "/" + path
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        # Handlers take (headers, body): query parameters reach them as `x-query-<name>`.
        for name, value in parse_qsl(scope.get("query_string", b"").decode()):
            headers[f"x-query-{name.lower()}"] = value
        raw = await _read_body(receive)
        try:
            body = msgspec.json.decode(raw) if raw else None
        except msgspec.DecodeError:
            await _respond(send, 400, {"message": "malformed JSON"})
            return
        control = self.control
        with control.lock:
            control.recorded.append(Recorded(provider, scope["method"], path, headers, body))
        if provider not in HANDLERS:
            await _respond(send, 404, {"message": "unknown provider"})
            return
        fault = control.next_fault(provider)
        if fault is not None:
            await _answer_fault(fault, receive, send)
            return
        with control.lock:
            key_ok = headers.get("authorization") == f"Bearer {control.api_keys[provider]}"
            if not key_ok or provider in control.revoked:
                status, reply = auth_failure(provider)
            else:
                status, reply = HANDLERS[provider](control, scope["method"], path, headers, body)
        await _respond(send, status, reply)


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer_fault(fault: Fault, receive: Any, send: Any) -> None:
    if fault.trickle:
        await _trickle(fault, receive, send)
        return
    if fault.delay:
        # Hold the answer back until the delay ends or the client gives up and hangs up
        # (the next `receive` after the body is the disconnect), so no task outlives a test.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(receive(), timeout=fault.delay)
    with contextlib.suppress(OSError):
        await _respond(send, fault.status, fault.body, fault.headers)


async def _respond(
    send: Any, status: int, body: Any, headers: dict[str, str] | None = None
) -> None:
    content = b"" if body is None else msgspec.json.encode(body)
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
    ]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": content})


async def _trickle(fault: Fault, receive: Any, send: Any) -> None:
    """Headers at once, then the body a byte at a time, stopping when the client hangs up."""
    content = msgspec.json.encode(fault.body)
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
    ]
    with contextlib.suppress(OSError):
        await send({"type": "http.response.start", "status": fault.status, "headers": raw_headers})
        for index in range(len(content)):
            last = index == len(content) - 1
            chunk = content[index : index + 1]
            await send({"type": "http.response.body", "body": chunk, "more_body": not last})
            if last:
                return
            try:
                # The pause between bytes; a disconnect (the client gave up) ends it early.
                await asyncio.wait_for(receive(), timeout=fault.trickle)
            except TimeoutError:
                continue
            return
