"""The Redis guardian fails closed when Redis is gone and recovers by itself when it is back.

(a) Redis unreachable mid-run: a TCP proxy between the guardian and the real Redis is cut
(listener and connections closed). Reserve refuses GUARDIAN_UNAVAILABLE and counts nothing;
when the proxy listens again on the same port, the next reserve passes with no help.

(b) A Redis that restarted with nothing kept: SCRIPT FLUSH plus deleting this test's keys
(only under its own prefix: the server is shared). The guardian loads its scripts again
(NOSCRIPT), reloads the tenant's phones and usage from `phone_source`, and answers as if
nothing had happened, the usage counted elsewhere included.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import redis
from structlog.testing import capture_logs

from cerniq_outreach.adapters.quota.redis_guardian import (
    AsyncRedisQuotaGuardian,
    QuotaGuardianUnavailable,
    RedisQuotaGuardian,
)
from cerniq_outreach.domain.enums import PhoneStatus, QuotaRefusal
from cerniq_outreach.domain.quota import QuotaDecision
from cerniq_outreach.domain.quota_ledger import PhoneQuotaSettings, Reservation

import services

pytestmark = pytest.mark.redis

T = "tenant-outage"
MONDAY = date(2026, 3, 2)
AT = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # 10:00 in Bucharest
P1 = PhoneQuotaSettings(phone_id="p1", status=PhoneStatus.ACTIVE, daily_limit=3)
P2 = PhoneQuotaSettings(phone_id="p2", status=PhoneStatus.ACTIVE, daily_limit=3)
HELD = Reservation(tenant_id=T, phone_id="p1", lead_id="l1", day=MONDAY)


class Proxy:
    """A TCP relay to `target` on a fixed local port, which can be cut and restored."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._flowing = threading.Event()
        self._flowing.set()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.port = 0

    def start(self) -> None:
        # create_server sets SO_REUSEADDR, so the port is free again right after a cut.
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # the listener was shut down: the proxy is cut
                return
            upstream = socket.create_connection(self._target)
            with self._lock:
                self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                self._flowing.wait()  # stalled: hold everything, answer nothing
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def stall(self) -> None:
        """Keep connections open but relay nothing: a Redis that stopped answering."""
        self._flowing.clear()

    def resume(self) -> None:
        """Relay again, on fresh connections: what was held back is dropped, not delivered."""
        self._drop_connections()
        self._flowing.set()

    def cut(self) -> None:
        """Stop listening and drop every relayed connection (nothing if already cut)."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            listener.close()
        self._drop_connections()
        self._flowing.set()

    def _drop_connections(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@pytest.fixture
def proxy(redis_url):
    parts = urlsplit(redis_url)
    relay = Proxy((parts.hostname or "127.0.0.1", parts.port or 6379))
    relay.start()
    yield relay
    relay.cut()


def through(redis_url: str, port: int) -> str:
    parts = urlsplit(redis_url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}"
    return parts._replace(netloc=netloc).geturl()


@pytest.fixture
def prefix(redis_prefix):
    return f"{redis_prefix}{services.new_token()}:"


@pytest.fixture
def direct(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_an_unreachable_redis_refuses_and_recovers_by_itself(proxy, redis_url, prefix):
    """Cut off, reserve fails closed and counts nothing; reconnected, it passes by itself."""
    guardian = RedisQuotaGuardian(through(redis_url, proxy.port), prefix=prefix)
    witness = RedisQuotaGuardian(redis_url, prefix=prefix)  # straight to Redis
    try:
        guardian.load_phones(T, [P1])
        assert guardian.reserve(T, phone_id="p1", lead_id="l1", cost=1, at=AT).decision.allowed
        proxy.cut()
        with capture_logs() as logs:
            answers = [
                guardian.reserve(T, phone_id=phone_id, lead_id="l2", cost=cost, at=AT)
                for phone_id in ("p1", None)
                for cost in (0, 1)
            ]
        for answer, phone_id in zip(answers, ("p1", "p1", None, None), strict=True):
            assert answer.reservation is None
            assert answer.decision == QuotaDecision(
                allowed=False,
                phone_id=phone_id,
                reason=QuotaRefusal.GUARDIAN_UNAVAILABLE,
                used=0,
                limit=0,
                retry_at=AT + timedelta(seconds=30),
            )
        assert [log["event"] for log in logs] == ["quota_guardian_unavailable"] * 4
        assert logs[0]["tenant_id"] == T
        with pytest.raises(QuotaGuardianUnavailable):
            guardian.usage(T, "p1", MONDAY)
        assert witness.usage(T, "p1", MONDAY) == 1  # nothing was counted meanwhile

        proxy.start()  # the same port again
        answer = guardian.reserve(T, phone_id="p1", lead_id="l2", cost=1, at=AT)
        assert (answer.decision.allowed, answer.decision.used) == (True, 2)
        assert guardian.usage(T, "p1", MONDAY) == 2
    finally:
        guardian.close()
        witness.close()


def test_a_redis_that_stops_answering_is_a_refusal_not_a_hang(proxy, redis_url, prefix):
    """A Redis that holds the connection but never answers fails closed after the timeout."""
    guardian = RedisQuotaGuardian(through(redis_url, proxy.port), prefix=prefix, socket_timeout=0.2)
    try:
        guardian.load_phones(T, [P1])
        proxy.stall()
        refused = guardian.reserve(T, phone_id="p1", lead_id="l1", cost=1, at=AT).decision
        assert refused.reason is QuotaRefusal.GUARDIAN_UNAVAILABLE
        proxy.resume()
        answer = guardian.reserve(T, phone_id="p1", lead_id="l1", cost=1, at=AT).decision
        assert (answer.allowed, answer.used) == (True, 1)
    finally:
        guardian.close()


def test_a_redis_that_stops_answering_the_async_guardian_is_a_refusal(proxy, redis_url, prefix):
    """The asyncio guardian's deadline turns a silent Redis into GUARDIAN_UNAVAILABLE."""

    async def run() -> None:
        url = through(redis_url, proxy.port)
        guardian = AsyncRedisQuotaGuardian(url, prefix=prefix, socket_timeout=0.2)
        try:
            await guardian.load_phones(T, [P1])
            proxy.stall()
            refused = await guardian.reserve(T, phone_id=None, lead_id="l1", cost=1, at=AT)
            assert refused.decision.reason is QuotaRefusal.GUARDIAN_UNAVAILABLE
            with pytest.raises(QuotaGuardianUnavailable):
                await guardian.usage(T, "p1", MONDAY)
            proxy.resume()
            answer = await guardian.reserve(T, phone_id=None, lead_id="l1", cost=1, at=AT)
            assert (answer.decision.allowed, answer.decision.used) == (True, 1)
        finally:
            await guardian.aclose()

    asyncio.run(run())


def test_an_unreachable_redis_refuses_the_async_guardian_too(proxy, redis_url, prefix):
    """The asyncio guardian fails closed the same way and recovers the same way."""

    async def run() -> None:
        guardian = AsyncRedisQuotaGuardian(through(redis_url, proxy.port), prefix=prefix)
        try:
            await guardian.load_phones(T, [P1])
            first = await guardian.reserve(T, phone_id=None, lead_id="l1", cost=1, at=AT)
            assert first.decision.allowed
            proxy.cut()
            refused = await guardian.reserve(T, phone_id=None, lead_id="l2", cost=1, at=AT)
            assert refused.decision.reason is QuotaRefusal.GUARDIAN_UNAVAILABLE
            with pytest.raises(QuotaGuardianUnavailable):
                await guardian.release(HELD)
            proxy.start()
            answer = await guardian.reserve(T, phone_id=None, lead_id="l2", cost=1, at=AT)
            assert (answer.decision.allowed, answer.decision.used) == (True, 2)
        finally:
            await guardian.aclose()

    asyncio.run(run())


def forget_everything(direct: redis.Redis, prefix: str) -> None:
    """What a Redis restart without persistence leaves: no scripts, none of our keys."""
    direct.script_flush()
    assert services.delete_prefixed_keys(direct, services.escape_glob(prefix) + "*") > 0


def test_a_restarted_redis_gets_scripts_phones_and_usage_back(redis_url, prefix, direct):
    """After a restart the guardian reloads scripts and phones, usage counted elsewhere kept."""
    asked = []

    def phone_source(tenant_id):
        asked.append(tenant_id)
        return [P1, P2], {("p1", MONDAY): 2}  # e.g. read from the audit copy

    guardian = RedisQuotaGuardian(redis_url, prefix=prefix, phone_source=phone_source)
    try:
        guardian.load_phones(T, [P1, P2])
        assert guardian.reserve(T, phone_id="p1", lead_id="l1", cost=1, at=AT).decision.allowed
        forget_everything(direct, prefix)

        answer = guardian.reserve(T, phone_id="p1", lead_id="l2", cost=1, at=AT)
        assert (answer.decision.allowed, answer.decision.used, answer.decision.limit) == (
            True,
            3,
            3,
        )
        assert asked == [T]
        refused = guardian.reserve(T, phone_id="p1", lead_id="l3", cost=1, at=AT).decision
        assert refused.reason is QuotaRefusal.QUOTA_EXCEEDED
        elsewhere = guardian.reserve(T, phone_id=None, lead_id="l3", cost=1, at=AT).decision
        assert (elsewhere.allowed, elsewhere.phone_id) == (True, "p2")

        forget_everything(direct, prefix)
        assert guardian.usage(T, "p1", MONDAY) == 2  # usage reloads a lost tenant as well
        assert asked == [T, T]
    finally:
        guardian.close()


def test_a_restarted_redis_reloads_for_the_async_guardian(redis_url, prefix, direct):
    """The asyncio guardian reloads scripts, phones and usage the same way."""
    asked = []

    def phone_source(tenant_id):
        asked.append(tenant_id)
        return [P1], {("p1", MONDAY): 1}

    async def run() -> None:
        guardian = AsyncRedisQuotaGuardian(redis_url, prefix=prefix, phone_source=phone_source)
        try:
            await guardian.set_phone(T, P1)  # nothing loaded yet: reloads, then sets
            assert asked == [T]
            forget_everything(direct, prefix)
            answer = await guardian.reserve(T, phone_id="p1", lead_id="l1", cost=1, at=AT)
            assert (answer.decision.allowed, answer.decision.used) == (True, 2)
            assert asked == [T, T]
        finally:
            await guardian.aclose()

    asyncio.run(run())


def test_without_a_phone_source_a_lost_tenant_has_no_phones(redis_url, prefix, direct):
    """With nowhere to reload from, the guardian answers as the ledger with no phones."""
    guardian = RedisQuotaGuardian(redis_url, prefix=prefix)
    try:
        guardian.load_phones(T, [P1])
        forget_everything(direct, prefix)
        named = guardian.reserve(T, phone_id="p1", lead_id="l1", cost=1, at=AT).decision
        assert (named.reason, named.phone_id, named.used, named.limit) == (
            QuotaRefusal.PHONE_NOT_ACTIVE,
            "p1",
            0,
            0,
        )
        any_phone = guardian.reserve(T, phone_id=None, lead_id="l1", cost=1, at=AT).decision
        assert (any_phone.reason, any_phone.phone_id) == (QuotaRefusal.PHONE_NOT_ACTIVE, None)
    finally:
        guardian.close()


def test_a_failing_phone_source_fails_closed(redis_url, prefix, direct):
    """When the reload itself fails (database down too), reserve refuses GUARDIAN_UNAVAILABLE."""

    def phone_source(_tenant_id):
        raise ConnectionRefusedError("database down")

    guardian = RedisQuotaGuardian(redis_url, prefix=prefix, phone_source=phone_source)
    try:
        guardian.load_phones(T, [P1])
        forget_everything(direct, prefix)
        with capture_logs() as logs:
            decision = guardian.reserve(T, phone_id="p1", lead_id="l1", cost=1, at=AT).decision
        assert decision.reason is QuotaRefusal.GUARDIAN_UNAVAILABLE
        assert [log["event"] for log in logs] == ["quota_guardian_unavailable"]
        with pytest.raises(QuotaGuardianUnavailable):
            guardian.usage(T, "p1", MONDAY)
    finally:
        guardian.close()
