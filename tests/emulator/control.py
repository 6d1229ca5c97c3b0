"""The emulator's switches and records, shared between the test thread and the server thread."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

PROVIDERS = ("timelinesai", "instantly", "resend")


@dataclass(frozen=True)
class Fault:
    """One answer the emulator gives instead of handling the request (nothing is acted on).

    `delay` holds the answer back that many seconds, or until the client hangs up: slow
    answers past the client's timeout. `trickle` sends the status and headers at once and
    then the body one byte every `trickle` seconds, until it ends or the client hangs up: a
    reply each of whose reads is quick but whose whole takes long.
    """

    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    trickle: float = 0.0

    @classmethod
    def rate_limited(cls, retry_after: str | None) -> Fault:
        headers = {} if retry_after is None else {"Retry-After": retry_after}
        body = {"statusCode": 429, "name": "rate_limit_exceeded", "message": "Too many requests"}
        return cls(status=429, body=body, headers=headers)

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        return cls(status=status, body={"message": "Internal server error"})

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        return cls(status=504, body={"message": "too slow"}, delay=seconds)

    @classmethod
    def trickling(cls, body: Any, every: float) -> Fault:
        """A 200 whose body comes one byte every `every` seconds."""
        return cls(status=200, body=body, trickle=every)


@dataclass(frozen=True)
class Recorded:
    """A request as the emulator received it (header names lowercased)."""

    provider: str
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class Control:
    """Switches a test sets and the records it reads back; every method is thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forget every switch, record and piece of provider state."""
        with self.lock:
            self.api_keys = {p: f"{p}-test-key-0123456789" for p in PROVIDERS}
            self.revoked: set[str] = set()
            self.invalid_phones: set[str] = set()
            self.invalid_emails: set[str] = set()
            self.faults: dict[str, deque[Fault]] = {p: deque() for p in PROVIDERS}
            self.recorded: list[Recorded] = []
            # Provider state.
            self.whatsapp_sent: list[dict[str, Any]] = []
            self.whatsapp_messages: dict[str, dict[str, Any]] = {}
            self.whatsapp_bodies: dict[str, dict[str, Any]] = {}  # each sent message's request
            self.emails_sent: list[dict[str, Any]] = []
            self.idempotent_replies: dict[str, tuple[bytes, int, Any]] = {}
            self.leads: dict[str, dict[str, Any]] = {}
            self.block_list: list[str] = []
            self.campaigns: dict[str, dict[str, Any]] = {}
            # TimelinesAI's linked numbers: phone -> status (`GET /whatsapp_accounts`).
            self.whatsapp_accounts: dict[str, str] = {"+40722123456": "active"}

    def fail_next(self, provider: str, fault: Fault, times: int = 1) -> None:
        """Answer the provider's next `times` requests with `fault`."""
        with self.lock:
            self.faults[provider].extend([fault] * times)

    def revoke(self, provider: str) -> None:
        """Refuse every key of the provider from now on (auth failure)."""
        with self.lock:
            self.revoked.add(provider)

    def requests(self, provider: str | None = None, path: str | None = None) -> list[Recorded]:
        """The requests received, optionally only one provider's or one path's."""
        with self.lock:
            return [
                r
                for r in self.recorded
                if (provider is None or r.provider == provider) and (path is None or r.path == path)
            ]

    def next_fault(self, provider: str) -> Fault | None:
        with self.lock:
            faults = self.faults[provider]
            return faults.popleft() if faults else None
