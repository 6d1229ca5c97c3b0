"""PostgreSQL event store: append throughput, replay of 1,000,000 events, follower lag.

Creates its own database on the server named by CERNIQ_BENCH_DATABASE_URL (default: the
local postgres superuser), migrates it, and drops it at the end. Measures, in one run:

1. Append throughput, single-event transactions and 10-event batches, with 1 writer and
   with 8 concurrent writers on different streams, against raw psycopg INSERTs of the same
   (already encoded) rows into a plain table with the same columns and no constraint but
   the primary key. Store and baseline alternate in rounds so drift hits both alike.
2. Replay: decode + fold (`journey.evolve` per stream) of 1,000,000 events (loaded with
   COPY) read the way `replay` reads them, `read_all` in batches of 1000, against a bare
   SELECT of the same rows with the same statement.
3. Follower lag: 8 writers append single events flat out while a follower loops
   `read_all` + `wait_for_events`; the time from an append's return (its commit) to the
   follower holding the event.

Prints `RESULT <name> <value> <unit>` lines; no assertion on the figures.
"""

from __future__ import annotations

import os
import secrets
import statistics
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

import msgspec
import psycopg
from psycopg import sql

from cerniq_outreach.adapters.eventstore import serialization
from cerniq_outreach.adapters.eventstore.postgres import FOLLOWER_ROLE, PostgresEventStore
from cerniq_outreach.adapters.eventstore.postgres_sql import READ_ALL
from cerniq_outreach.adapters.migrations import migrate
from cerniq_outreach.adapters.vault import MemoryVault
from cerniq_outreach.application.records import START
from cerniq_outreach.domain.events import Event
from cerniq_outreach.domain.journey import Journey, evolve

from journeys import realistic_journey

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

SERVER_URL = os.environ.get(
    "CERNIQ_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TENANT = "bench"
T0 = datetime(2026, 3, 2, 8, tzinfo=UTC)
TEMPLATES = 500  # distinct journeys built with `decide`; the rest are copies with new ids
REPLAY_EVENTS = 1_000_000
REPLAY_BATCH = 1000  # what `replay` reads per round trip
WRITERS = 8
ROUNDS = 6  # store and baseline alternate this many times per configuration
LAG_SECONDS = 6.0

COLUMNS = (
    "tenant_id, stream_id, stream_version, event_id, event_type, schema_version,"
    " data, sealed, metadata, occurred_at"
)
PLAIN_TABLE = """
CREATE TABLE plain_events (
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
    tenant_id text NOT NULL, stream_id text NOT NULL, stream_version integer NOT NULL,
    event_id text NOT NULL, event_type text NOT NULL, schema_version integer NOT NULL,
    data json NOT NULL, sealed bytea, metadata jsonb NOT NULL DEFAULT '{}',
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""
PLAIN_INSERT = (
    f"INSERT INTO plain_events ({COLUMNS})"  # noqa: S608  # constant text
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)

Row = tuple[object, ...]


# --- set-up -----------------------------------------------------------------------------------


@contextmanager
def bench_database() -> Iterator[str]:
    """A fresh, migrated database of this run's own, dropped at the end."""
    name = f"cerniq_bench_{secrets.token_hex(4)}"
    with psycopg.connect(SERVER_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = urlsplit(SERVER_URL)._replace(path="/" + quote(name)).geturl()
    try:
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(PLAIN_TABLE)
            conn.execute("GRANT SELECT, INSERT ON plain_events TO cerniq_app")
        yield url
    finally:
        with psycopg.connect(SERVER_URL, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def template_journey(i: int) -> list[Event]:
    """A realistic journey (16 events, two of them with personal data)."""
    return realistic_journey(i, tenant=TENANT, lead="lead", start=T0 + timedelta(minutes=i))


TEMPLATE_JOURNEYS = [template_journey(i) for i in range(TEMPLATES)]


def stream_events(lead: str, n: int = 0) -> list[Event]:
    """The events of one journey for lead `lead` (a template's copy with the lead's ids)."""
    template = TEMPLATE_JOURNEYS[n % TEMPLATES]
    replace = msgspec.structs.replace
    return [replace(e, event_id=f"{lead}/{k}", lead_id=lead) for k, e in enumerate(template)]


def plain_rows(lead: str, events: Sequence[Event], vault: MemoryVault) -> list[Row]:
    """The rows the store would write for `events`, for the raw-INSERT baseline."""
    rows: list[Row] = []
    for version, event in enumerate(events, start=1):
        r = serialization.to_row(event, vault)
        rows.append(
            (
                TENANT,
                lead,
                version,
                r.event_id,
                r.event_type,
                r.schema_version,
                r.data.decode(),
                r.sealed,
                "{}",
                event.occurred_at,
            )
        )
    return rows


# --- 1. append throughput -----------------------------------------------------------------------


def run_threads(n: int, work: Callable[[int], None]) -> float:
    """Run `work(k)` on `n` threads that start together; the wall time they took."""
    start = threading.Barrier(n + 1)

    def go(k: int) -> None:
        start.wait()
        work(k)

    threads = [threading.Thread(target=go, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - began


def append_bench(url: str, store: PostgresEventStore, vault: MemoryVault) -> None:
    """Store appends against raw INSERTs, for (writers, batch) in the four configurations.

    The baseline is as lean as raw psycopg gets: a single event is one autocommit INSERT
    (one round trip, like the store's append), a batch is `executemany` in a transaction.
    Both run as cerniq_app. The store's figure includes encoding and sealing the events;
    the baseline's rows are encoded before its clock starts.
    """
    configs = {  # name -> (writers, events per transaction, transactions per writer)
        "1x1": (1, 1, 3000),
        "1x10": (1, 10, 900),
        "8x1": (WRITERS, 1, 1200),
        "8x10": (WRITERS, 10, 300),
    }
    raw_conns = [psycopg.connect(url, autocommit=True) for _ in range(WRITERS)]
    for conn in raw_conns:
        conn.execute("SET ROLE cerniq_app")
    for name, (writers, batch, txns) in configs.items():
        per_round = txns // ROUNDS
        spent = {"store": 0.0, "baseline": 0.0}
        for round_ in range(ROUNDS):
            for who, seconds in append_round(
                f"{name}-{round_}",
                store_first=round_ % 2 == 1,
                writers=writers,
                batch=batch,
                txns=per_round,
                store=store,
                raw_conns=raw_conns,
                vault=vault,
            ):
                spent[who] += seconds
        events = writers * per_round * ROUNDS * batch
        store_rate, raw_rate = events / spent["store"], events / spent["baseline"]
        print(f"RESULT pg_append_{name}_store_rate {store_rate:.0f} events/s")
        print(f"RESULT pg_append_{name}_raw_insert_rate {raw_rate:.0f} events/s")
        print(f"RESULT pg_append_{name}_ratio {store_rate / raw_rate:.2f} ratio")
    for conn in raw_conns:
        conn.close()


def append_round(
    prefix: str,
    *,
    store_first: bool,
    writers: int,
    batch: int,
    txns: int,
    store: PostgresEventStore,
    raw_conns: list[psycopg.Connection[Row]],
    vault: MemoryVault,
) -> list[tuple[str, float]]:
    """One round of the same work through the store and through raw INSERTs, timed."""
    # Work lists, built before the clock starts: (lead, events, expected version).
    work = [append_work(f"{prefix}-w{k}", batch, txns) for k in range(writers)]
    rows = [[plain_rows(lead, evs, vault) for lead, evs, _ in w] for w in work]

    def store_writer(k: int) -> None:
        for lead, events, expected in work[k]:
            store.append(TENANT, lead, events, expected_version=expected)

    def raw_writer(k: int) -> None:
        conn = raw_conns[k]
        for batch_rows in rows[k]:
            if len(batch_rows) == 1:
                conn.execute(PLAIN_INSERT, batch_rows[0])
            else:
                with conn.transaction():
                    conn.cursor().executemany(PLAIN_INSERT, batch_rows)

    # Alternate who goes first: the disk's flush latency drifts during a run.
    order = [("baseline", raw_writer), ("store", store_writer)]
    if store_first:
        order.reverse()
    return [(who, run_threads(writers, writer)) for who, writer in order]


def append_work(prefix: str, batch: int, txns: int) -> list[tuple[str, list[Event], int]]:
    """`txns` appends of `batch` events: single events walk each stream in order."""
    work: list[tuple[str, list[Event], int]] = []
    lead_no = 0
    while len(work) < txns:
        lead = f"{prefix}-{lead_no}"
        events = stream_events(lead, lead_no)
        lead_no += 1
        if batch == 1:
            work.extend((lead, [e], v) for v, e in enumerate(events))
        else:
            work.append((lead, events[:batch], 0))
    return work[:txns]


# --- 2. replay ----------------------------------------------------------------------------------


def load_replay_events(url: str, vault: MemoryVault) -> int:
    """COPY 1,000,000 encoded events into the log; streams interleave as in real life."""
    journey_len = len(TEMPLATE_JOURNEYS[0])
    leads = REPLAY_EVENTS // journey_len
    group = 1000  # events of 1000 leads at a time are interleaved, event k of each in turn
    loaded = 0
    with psycopg.connect(url) as conn:
        with conn.cursor().copy(f"COPY events ({COLUMNS}) FROM STDIN") as copy:
            for first in range(0, leads, group):
                streams = [
                    (f"r{n}", stream_events(f"r{n}", n))
                    for n in range(first, min(first + group, leads))
                ]
                for k in range(journey_len):
                    for lead, events in streams:
                        event = events[k]
                        r = serialization.to_row(event, vault)
                        copy.write_row(
                            (
                                TENANT,
                                lead,
                                k + 1,
                                r.event_id,
                                r.event_type,
                                r.schema_version,
                                r.data.decode(),
                                r.sealed,
                                "{}",
                                event.occurred_at,
                            )
                        )
                        loaded += 1
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) events")  # settle hint bits before anything is timed
    return loaded


def replay_bench(url: str, vault: MemoryVault) -> None:
    """Decode + fold the whole log as `replay` reads it, against a bare SELECT of it.

    `replay` follows the log with `read_all` (gap-safe) in batches of 1000; the bare SELECT
    runs the very same statement, as the same role, fetching the rows and decoding nothing.
    """
    started = time.perf_counter()
    loaded = load_replay_events(url, vault)
    print(f"RESULT pg_replay_load_seconds {time.perf_counter() - started:.1f} s")
    follower = PostgresEventStore(url, vault, role=FOLLOWER_ROLE, pool_size=2)
    try:
        bare_select(url)  # warm the server's cache and the statement for both
        bare = bare_select(url)
        started = time.perf_counter()
        states: dict[str, Journey] = {}
        empty = Journey()
        count, after = 0, START
        while batch := follower.read_all(after=after, limit=REPLAY_BATCH):
            for record in batch:
                key = record.stream_id
                states[key] = evolve(states.get(key, empty), record.event)
            count += len(batch)
            after = batch[-1].checkpoint
        replay = time.perf_counter() - started
    finally:
        follower.close()
    assert count >= loaded, (count, loaded)  # the log also holds the appends measured before
    print(f"RESULT pg_replay_events {count} events")
    print(f"RESULT pg_replay_decode_fold_rate {count / replay:.0f} events/s")
    print(f"RESULT pg_replay_bare_select_rate {count / bare:.0f} events/s")
    print(f"RESULT pg_replay_vs_bare_select {bare / replay:.2f} ratio")


def bare_select(url: str) -> float:
    """Seconds to fetch the whole log with the follower's own statement, decoding nothing."""
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET ROLE cerniq_follower")
        after: tuple[object, ...] = ("0", 0)
        while rows := conn.cursor(binary=True).execute(READ_ALL, (*after, REPLAY_BATCH)).fetchall():
            after = (str(rows[-1][1]), rows[-1][0])
    return time.perf_counter() - started


# --- 3. follower lag ----------------------------------------------------------------------------


def lag_bench(url: str, store: PostgresEventStore, vault: MemoryVault) -> None:
    """Commit-to-follower time under 8 writers appending single events flat out."""
    follower = PostgresEventStore(url, vault, role=FOLLOWER_ROLE, pool_size=2)
    committed: dict[str, float] = {}
    seen: dict[str, float] = {}
    caught_up, writers_done = threading.Event(), threading.Event()

    def follow() -> None:
        after = START
        while batch := follower.read_all(after=after, limit=10_000):
            after = batch[-1].checkpoint  # skip what the log held before
        caught_up.set()
        while not writers_done.is_set() or len(seen) < len(committed):
            batch = follower.read_all(after=after, limit=1000)
            now = time.perf_counter()
            for record in batch:
                seen[record.event_id] = now
            if batch:
                after = batch[-1].checkpoint
            else:
                follower.wait_for_events(0.05)

    def write(k: int) -> None:
        n = 0
        while time.perf_counter() < deadline:
            lead = f"lag-{k}-{n}"
            for version, event in enumerate(stream_events(lead, n)):
                store.append(TENANT, lead, [event], expected_version=version)
                committed[event.event_id] = time.perf_counter()
            n += 1

    follower_thread = threading.Thread(target=follow)
    follower_thread.start()
    caught_up.wait()
    deadline = time.perf_counter() + LAG_SECONDS
    run_threads(WRITERS, write)
    writers_done.set()
    follower_thread.join()
    follower.close()
    # A follower may read an event before its writer's thread runs again to note the time.
    lags = sorted(max(0.0, seen[e] - t) * 1000 for e, t in committed.items())
    p99 = lags[int(len(lags) * 0.99) - 1]
    print(f"RESULT pg_follower_lag_events {len(lags)} events")
    print(f"RESULT pg_follower_lag_p50 {statistics.median(lags):.1f} ms")
    print(f"RESULT pg_follower_lag_p99 {p99:.1f} ms")
    print(f"RESULT pg_follower_lag_max {lags[-1]:.1f} ms")


def main() -> None:
    """Run the three measurements on a database of their own."""
    vault = MemoryVault()
    with bench_database() as url:
        store = PostgresEventStore(url, vault, pool_size=WRITERS)
        try:
            append_bench(url, store, vault)
            lag_bench(url, store, vault)
        finally:
            store.close()
        replay_bench(url, vault)


if __name__ == "__main__":
    main()
