"""Shared test set-up: Hypothesis profiles and the real services integration tests run against.

HYPOTHESIS_PROFILE picks `dev` (default), `ci` or `debug`. The service fixtures are resolved
by `services.py`: environment variable, else testcontainers, else skip (or fail in CI).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, Verbosity, settings

import services

if TYPE_CHECKING:
    from collections.abc import Iterator

settings.register_profile("dev", max_examples=100, stateful_step_count=30, deadline=None)
settings.register_profile(
    "ci",
    max_examples=500,
    stateful_step_count=50,
    deadline=None,
    print_blob=True,
    # CI machines are slow and shared; slow data generation there is not a defect.
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "debug", parent=settings.get_profile("dev"), max_examples=10, verbosity=Verbosity.verbose
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


# --- PostgreSQL -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """The PostgreSQL server's base URL (its default database): for admin work only."""
    with services.postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A database of this run's own, empty when created and dropped at the end."""
    with services.fresh_database(postgres_server_url) as url:
        yield url


# --- Redis ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis server URL; keep to `redis_prefix` when writing keys."""
    with services.redis_server() as url:
        services.redis_client(url).close()  # answer now, not halfway through a test
        yield url


@pytest.fixture(scope="session")
def redis_prefix(redis_url: str) -> Iterator[str]:
    """This run's key prefix, `cerniq-test:<hex>:`; its keys are deleted at the end."""
    prefix = f"cerniq-test:{services.new_token()}:"
    yield prefix
    client = services.redis_client(redis_url)
    try:
        services.delete_prefixed_keys(client, services.escape_glob(prefix) + "*")
    finally:
        client.close()


# --- the broker -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    """A broker URL: `amqp://` (RabbitMQ) or `redis://`."""
    with services.broker_server() as url:
        if services.is_amqp(url):
            services.amqp_connection(url).close()
        else:
            services.redis_client(url, services.BROKER).close()
        yield url


@pytest.fixture(scope="session")
def broker_prefix(broker_url: str) -> Iterator[services.QueuePrefix]:
    """This run's queue-name prefix; name queues with `.queue(name)` so they are deleted."""
    prefix = services.QueuePrefix(f"cerniq-test-{services.new_token()}.")
    yield prefix
    services.delete_broker_namespace(broker_url, prefix)
