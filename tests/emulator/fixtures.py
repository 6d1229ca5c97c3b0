"""Serve the emulator on a free loopback port for a test session (uvicorn in a thread)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
import uvicorn

from cerniq_outreach.adapters.channels.http import HttpPolicy
from cerniq_outreach.adapters.channels.instantly import instantly_channel
from cerniq_outreach.adapters.channels.resend import resend_channel
from cerniq_outreach.adapters.channels.timelinesai import timelinesai_channel
from cerniq_outreach.adapters.clock import SimulatedClock
from cerniq_outreach.application.channels import WarmEmail
from cerniq_outreach.settings import ProviderSettings
from emulator.app import EmulatorApp
from emulator.control import Control

if TYPE_CHECKING:
    from collections.abc import Iterator

    from cerniq_outreach.settings import ProviderName

_READY_WITHIN = 10.0
START = datetime(2025, 3, 4, 8, 0, tzinfo=UTC)
POLICY = HttpPolicy(timeout=5.0, connect_timeout=2.0, max_attempts=3)


@dataclass(frozen=True)
class Emulator:
    """A running emulator: its root URL and the control object the test drives it with."""

    url: str
    control: Control

    def settings(self, provider: ProviderName, *, api_key: str | None = None) -> ProviderSettings:
        """Provider settings pointing at the emulator, with the key it accepts by default."""
        return ProviderSettings(
            name=provider,
            base_url=f"{self.url}/{provider}",
            api_key=api_key if api_key is not None else self.control.api_keys[provider],
        )


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[Emulator]:
    """One emulator for the session, on a port the OS picked, stopped at the end."""
    control = Control()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()
    config = uvicorn.Config(
        EmulatorApp(control),
        http="h11",
        ws="none",  # the websockets backends warn about deprecations; nothing here needs them
        lifespan="off",
        log_config=None,  # leave the process's logging (and structlog capture) alone
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="provider-emulator", daemon=True
    )
    thread.start()
    try:
        _wait_until_listening(host, port, server, thread)
        yield Emulator(url=f"http://{host}:{port}", control=control)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def emulator(emulator_server: Emulator) -> Emulator:
    """The session's emulator with every switch, record and provider state cleared."""
    emulator_server.control.reset()
    return emulator_server


def _wait_until_listening(
    host: str, port: int, server: uvicorn.Server, thread: threading.Thread
) -> None:
    """Poll until uvicorn says it started and the port accepts a connection."""
    deadline = time.monotonic() + _READY_WITHIN
    poll = threading.Event()  # never set: its wait() is a bounded pause between polls
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError("the provider emulator stopped during start-up")
        if server.started:
            try:
                socket.create_connection((host, port), timeout=1.0).close()
            except OSError:
                pass
            else:
                return
        poll.wait(0.01)
    raise RuntimeError(f"the provider emulator did not listen within {_READY_WITHIN} s")


# --- the adapters under test, on simulated time -----------------------------------------------


class FakeTime:
    """A stopped clock and a sleep that only moves it forward (and remembers each wait)."""

    def __init__(self) -> None:
        self.clock = SimulatedClock(START, speed=0)
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(timedelta(seconds=seconds))


class GrantingLimiter:
    """A RateLimiter that grants every request (after any scripted waits) and records asks."""

    def __init__(self, waits: tuple[float, ...] = ()) -> None:
        self.calls: list[tuple[str, object, datetime]] = []
        self._waits = list(waits)

    def acquire(self, key, limit, *, at, cost=1):
        self.calls.append((key, limit, at))
        return self._waits.pop(0) if self._waits else 0.0


def warm_email(message_id: str = "msg-01HZX", to: str = "ion.popescu@ferma-verde.ro") -> WarmEmail:
    """A warm email with personal data in every field a log line must not show."""
    return WarmEmail(
        tenant_id="acme",
        lead_id="lead-7",
        message_id=message_id,
        sender="Cerniq <vanzari@cerniq.ro>",
        to=to,
        subject="Oferta pentru ferma dumneavoastră",
        text="Bună ziua, domnule Popescu",
        unsubscribe_url="https://cerniq.ro/u/tok123",
    )


@pytest.fixture
def fake_time() -> FakeTime:
    """Simulated time for the adapters' clock and sleep."""
    return FakeTime()


@pytest.fixture
def limiter() -> GrantingLimiter:
    """A rate limiter that records every ask and grants it."""
    return GrantingLimiter()


@pytest.fixture
def whatsapp(emulator, fake_time, limiter):
    """The TimelinesAI adapter pointed at the emulator."""
    settings = emulator.settings("timelinesai")
    channel = timelinesai_channel(
        settings, limiter, fake_time.clock, policy=POLICY, sleep=fake_time.sleep
    )
    yield channel
    channel.close()


@pytest.fixture
def cold(emulator, fake_time, limiter):
    """The Instantly adapter pointed at the emulator."""
    settings = emulator.settings("instantly")
    channel = instantly_channel(
        settings, limiter, fake_time.clock, policy=POLICY, sleep=fake_time.sleep
    )
    yield channel
    channel.close()


@pytest.fixture
def warm(emulator, fake_time, limiter):
    """The Resend adapter pointed at the emulator."""
    settings = emulator.settings("resend")
    channel = resend_channel(
        settings, limiter, fake_time.clock, policy=POLICY, sleep=fake_time.sleep
    )
    yield channel
    channel.close()
