"""Where the integration tests find PostgreSQL, Redis and a message broker.

For each service, in order: the server named by its `CERNIQ_TEST_*` variable; else a
testcontainers container when a Docker engine answers; else the tests that need it are skipped
with a reason that says how to enable them, or fail when `CERNIQ_REQUIRE_SERVICES=1` (CI), so a
missing service can never make CI green by skipping.

Every run works in its own namespace (a fresh database, a key prefix, a queue-name prefix) and
removes it at the end, so runs can share one server, in parallel too.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import subprocess
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import quote, unquote, urlsplit

import pika
import psycopg
import pytest
import redis
from psycopg import sql

REQUIRE_SERVICES = "CERNIQ_REQUIRE_SERVICES"


@dataclass(frozen=True)
class Service:
    """One external service the tests may need, and how a developer points the tests at it."""

    name: str
    env_var: str
    example: str


POSTGRES = Service(
    "PostgreSQL", "CERNIQ_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS = Service("Redis", "CERNIQ_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BROKER = Service(
    "the message broker", "CERNIQ_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"
)


def unavailable(service: Service, why: str) -> NoReturn:
    """Skip the test for lack of `service`, or fail it when services are required."""
    if os.environ.get(service.env_var):
        hint = f"start the server that {service.env_var} points at, or fix the variable"
    else:
        hint = (
            f"to run these tests set {service.env_var}={service.example} "
            "or start Docker for testcontainers"
        )
    reason = f"{service.name} is not available ({why}); {hint}"
    if os.environ.get(REQUIRE_SERVICES) == "1":
        pytest.fail(f"{reason} [{REQUIRE_SERVICES}=1]", pytrace=False)
    pytest.skip(reason)


@functools.cache
def docker_available() -> bool:
    """True when a Docker engine answers `docker info` (checked once per run)."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        completed = subprocess.run(  # noqa: S603  # fixed arguments, no shell
            [docker, "info"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return completed.returncode == 0


def new_token() -> str:
    """A random hex token that makes one run's names unique on a shared server."""
    return secrets.token_hex(6)


@contextmanager
def _quiet_deprecations() -> Iterator[None]:
    # testcontainers warns about its own deprecated internals (e.g. the RabbitMQ readiness
    # probe); pytest turns warnings into errors, and those are not ours to fix.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _run_container(stack: ExitStack, container: Any) -> Any:
    """Start `container` now and stop it when `stack` closes."""
    with _quiet_deprecations():
        container.start()

    def stop() -> None:
        with _quiet_deprecations():
            container.stop()

    stack.callback(stop)
    return container


def _postgres_container(stack: ExitStack) -> str:
    with _quiet_deprecations():
        from testcontainers.community.postgres import PostgresContainer  # noqa: PLC0415  # only with Docker

    container = _run_container(stack, PostgresContainer("postgres:16-alpine", driver=None))
    url: str = container.get_connection_url(driver=None)
    return url


def _redis_container(stack: ExitStack) -> str:
    with _quiet_deprecations():
        from testcontainers.community.redis import RedisContainer  # noqa: PLC0415  # only with Docker

    container = _run_container(stack, RedisContainer("redis:7-alpine"))
    host, port = container.get_container_host_ip(), container.get_exposed_port(container.port)
    return f"redis://{host}:{port}/0"


def _rabbitmq_container(stack: ExitStack) -> str:
    with _quiet_deprecations():
        from testcontainers.community.rabbitmq import RabbitMqContainer  # noqa: PLC0415  # only with Docker

    container = _run_container(stack, RabbitMqContainer("rabbitmq:3-alpine"))
    host, port = container.get_container_host_ip(), container.get_exposed_port(container.port)
    user, password = quote(container.username, safe=""), quote(container.password, safe="")
    return f"amqp://{user}:{password}@{host}:{port}/{quote(container.vhost, safe='')}"


@contextmanager
def server_url(service: Service, start_container: Callable[[ExitStack], str]) -> Iterator[str]:
    """The URL of a server for `service`: from its variable, else from a fresh container."""
    configured = os.environ.get(service.env_var)
    if configured:
        yield configured
        return
    if not docker_available():
        unavailable(service, f"{service.env_var} is unset and no Docker engine answers")
    with ExitStack() as stack:
        yield start_container(stack)


# --- PostgreSQL -----------------------------------------------------------------------------


def postgres_server() -> AbstractContextManager[str]:
    """The base PostgreSQL server URL (its default database); see `server_url`."""
    return server_url(POSTGRES, _postgres_container)


def with_database(url: str, dbname: str) -> str:
    """`url` pointing at database `dbname` instead of the one it names."""
    parts = urlsplit(url)
    return parts._replace(path="/" + quote(dbname, safe="")).geturl()


def database_name(url: str) -> str:
    """The database a PostgreSQL URL names."""
    return unquote(urlsplit(url).path.lstrip("/"))


def _admin_connection(server: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(server, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        # The first line of libpq's message names host and cause, never the password.
        unavailable(POSTGRES, f"cannot connect: {str(exc).splitlines()[0]}")


@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    """Create an empty database `cerniq_test_<hex>` on `server`, yield its URL, then drop it."""
    name = f"cerniq_test_{new_token()}"
    # CREATE/DROP DATABASE cannot run inside a transaction, hence autocommit.
    with _admin_connection(server) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(server, name)
    finally:
        with _admin_connection(server) as conn:
            # FORCE ends connections a test leaked (a pool not closed), which would block DROP.
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


# --- Redis ----------------------------------------------------------------------------------


def redis_server() -> AbstractContextManager[str]:
    """A Redis server URL; see `server_url`."""
    return server_url(REDIS, _redis_container)


def redis_client(url: str, service: Service = REDIS) -> redis.Redis:
    """A connected client for `url` (skips or fails the test when it does not answer)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=10)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        client.close()
        unavailable(service, f"cannot connect: {exc}")
    return client


def delete_prefixed_keys(client: redis.Redis, pattern: str) -> int:
    """Delete every key matching `pattern` (SCAN, never KEYS: it blocks a shared server)."""
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=pattern, count=500):
        batch.append(key)
        if len(batch) >= 500:
            deleted += int(client.unlink(*batch))
            batch.clear()
    if batch:
        deleted += int(client.unlink(*batch))
    return deleted


def escape_glob(text: str) -> str:
    """`text` with Redis glob metacharacters escaped, so it matches only itself."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


# --- the broker -----------------------------------------------------------------------------


def broker_server() -> AbstractContextManager[str]:
    """A broker URL (`amqp://` for RabbitMQ or `redis://`); see `server_url`."""
    return server_url(BROKER, _rabbitmq_container)


def is_amqp(url: str) -> bool:
    """True for a RabbitMQ URL, False for a Redis one."""
    return urlsplit(url).scheme in {"amqp", "amqps"}


@dataclass
class QueuePrefix:
    """A per-run queue-name prefix that remembers the queues named with it.

    RabbitMQ cannot list queues over AMQP (only its optional management API can), so the
    clean-up deletes exactly the queues that were named through `queue()`.
    """

    prefix: str
    queues: set[str] = field(default_factory=set)

    def __str__(self) -> str:
        return self.prefix

    def queue(self, name: str) -> str:
        """The full, prefixed name of queue `name`, recorded for deletion at the end."""
        full = f"{self.prefix}{name}"
        self.queues.add(full)
        return full


def amqp_connection(url: str) -> pika.BlockingConnection:
    """A connection to the RabbitMQ at `url` (skips or fails the test when it does not answer)."""
    params = pika.URLParameters(url)
    params.socket_timeout = 10
    params.blocked_connection_timeout = 10
    params.connection_attempts = 1
    try:
        return pika.BlockingConnection(params)
    except pika.exceptions.AMQPError as exc:
        unavailable(BROKER, f"cannot connect: {exc!r}")


def delete_broker_namespace(url: str, prefix: QueuePrefix) -> None:
    """Delete the queues (RabbitMQ) or keys (Redis) a run created under `prefix`."""
    if is_amqp(url):
        queues = set(prefix.queues)
        if not queues:
            return
        connection = amqp_connection(url)
        try:
            channel = connection.channel()
            for name in sorted(queues):
                # dramatiq pairs each queue with a delay (.DQ) and a dead-letter (.XQ) queue;
                # deleting a queue that does not exist is not an error in RabbitMQ.
                for full in (name, f"{name}.DQ", f"{name}.XQ"):
                    channel.queue_delete(queue=full)
        finally:
            connection.close()
        return
    client = redis_client(url, BROKER)
    try:
        # dramatiq's Redis broker puts its namespace before the queue name, hence `*` in front.
        delete_prefixed_keys(client, f"*{escape_glob(prefix.prefix)}*")
    finally:
        client.close()
