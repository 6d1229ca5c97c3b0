"""The service fixtures give each run a working service of its own, and clean up after it."""

from __future__ import annotations

import pika
import psycopg
import pytest
import redis

import services

# --- PostgreSQL -----------------------------------------------------------------------------


@pytest.mark.postgres
def test_run_database_is_its_own_and_not_the_servers_default(postgres_url, postgres_server_url):
    """The run's database is a fresh `cerniq_test_<hex>` database, not the server's default."""
    name = services.database_name(postgres_url)
    with psycopg.connect(postgres_url) as run, psycopg.connect(postgres_server_url) as base:
        run_db = run.execute("SELECT current_database()").fetchone()
        base_db = base.execute("SELECT current_database()").fetchone()
    assert run_db == (name,)
    assert name.startswith("cerniq_test_")
    assert base_db != run_db


@pytest.mark.postgres
def test_a_fresh_database_starts_empty_and_is_dropped_afterwards(postgres_server_url):
    """A database made by the fixture's helper holds no tables, and is gone once released."""
    with services.fresh_database(postgres_server_url) as url:
        with psycopg.connect(url) as conn:
            tables = conn.execute(
                "SELECT count(*) FROM information_schema.tables"
                " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
            ).fetchone()
        assert tables == (0,)
        name = services.database_name(url)
    with psycopg.connect(postgres_server_url) as base:
        left = base.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,))
        assert left.fetchone() == (0,)


@pytest.mark.postgres
def test_a_table_in_the_run_database_is_invisible_from_the_base_database(
    postgres_url, postgres_server_url
):
    """Writes in the run's database stay there: the server's default database never sees them."""
    table = f"isolation_probe_{services.new_token()}"
    with psycopg.connect(postgres_url) as run:
        run.execute(f"CREATE TABLE {table} (id int PRIMARY KEY)")
        run.execute(f"INSERT INTO {table} VALUES (1)")  # noqa: S608  # table name is ours
        run.commit()
        try:
            seen_here = run.execute("SELECT to_regclass(%s)", (table,)).fetchone()
            with psycopg.connect(postgres_server_url) as base:
                seen_there = base.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        finally:
            run.execute(f"DROP TABLE {table}")
            run.commit()
    assert seen_here == (table,)
    assert seen_there == (None,)


# --- Redis ----------------------------------------------------------------------------------


@pytest.mark.redis
def test_keys_under_the_run_prefix_are_written_and_read_back(redis_url, redis_prefix):
    """A key written under the run's prefix reads back the same value from the server."""
    client = redis.Redis.from_url(redis_url)
    key = f"{redis_prefix}probe:{services.new_token()}"
    try:
        assert client.exists(key) == 0
        client.set(key, "ziua bună", ex=300)
        assert client.get(key) == "ziua bună".encode()
    finally:
        client.delete(key)
        client.close()


@pytest.mark.redis
def test_each_run_prefix_is_unique(redis_prefix):
    """Prefixes carry a random token, so runs sharing one server never touch each other's keys."""
    assert redis_prefix.startswith("cerniq-test:")
    assert redis_prefix.endswith(":")
    assert redis_prefix != f"cerniq-test:{services.new_token()}:"
    assert len({services.new_token() for _ in range(100)}) == 100


@pytest.mark.redis
def test_prefix_clean_up_deletes_only_the_prefixs_keys(redis_url, redis_prefix):
    """Clean-up removes every key under a prefix (SCAN, in batches) and nothing outside it."""
    client = redis.Redis.from_url(redis_url)
    inner = f"{redis_prefix}cleanup:{services.new_token()}:"
    outside = f"{redis_prefix}kept:{services.new_token()}"
    try:
        client.mset({f"{inner}{i}": i for i in range(1200)} | {outside: "stays"})
        deleted = services.delete_prefixed_keys(client, services.escape_glob(inner) + "*")
        assert deleted == 1200
        assert list(client.scan_iter(match=services.escape_glob(inner) + "*")) == []
        assert client.get(outside) == b"stays"
    finally:
        client.delete(outside)
        client.close()


# --- the broker -----------------------------------------------------------------------------


@pytest.mark.broker
def test_broker_gives_back_a_published_message_from_a_prefixed_queue(broker_url, broker_prefix):
    """A message published to a queue under the run's prefix is received unchanged."""
    queue = broker_prefix.queue(f"roundtrip-{services.new_token()}")
    body = b'{"lead_id": "L-1", "text": "Bun\xc4\x83 ziua"}'
    assert queue.startswith(str(broker_prefix))
    if services.is_amqp(broker_url):
        connection = services.amqp_connection(broker_url)
        try:
            channel = connection.channel()
            # With publisher confirms, basic_publish returns once the broker has the message
            # queued, so the basic_get below needs no waiting.
            channel.confirm_delivery()
            channel.queue_declare(queue=queue, durable=False)
            channel.basic_publish(exchange="", routing_key=queue, body=body, mandatory=True)
            method, _, received = channel.basic_get(queue=queue, auto_ack=True)
        finally:
            connection.close()
        assert method is not None
    else:
        client = redis.Redis.from_url(broker_url)
        try:
            client.lpush(queue, body)
            popped = client.brpop([queue], timeout=5)
        finally:
            client.close()
        assert popped is not None
        received = popped[1]
    assert received == body


@pytest.mark.broker
def test_broker_clean_up_deletes_the_runs_queues(broker_url):
    """Queues named through a prefix are gone after the clean-up, messages and all."""
    prefix = services.QueuePrefix(f"cerniq-test-{services.new_token()}.")
    queue = prefix.queue("cleanup")
    if services.is_amqp(broker_url):
        connection = services.amqp_connection(broker_url)
        try:
            connection.channel().queue_declare(queue=queue)
            services.delete_broker_namespace(broker_url, prefix)
            # A passive declare asks "does it exist?"; the broker answers 404 by closing.
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
                connection.channel().queue_declare(queue=queue, passive=True)
            assert closed.value.reply_code == 404
        finally:
            connection.close()
    else:
        client = redis.Redis.from_url(broker_url)
        try:
            client.lpush(queue, b"x")
            services.delete_broker_namespace(broker_url, prefix)
            assert client.exists(queue) == 0
        finally:
            client.close()
