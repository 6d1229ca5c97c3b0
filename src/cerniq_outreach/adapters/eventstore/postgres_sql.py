"""The SQL of the PostgreSQL event store, with the reasons behind each statement.

Parameters are psycopg's (`%s`, `%(name)s`; `%(name)b` for binary). The append itself is
the `cerniq_append_events` function of migration 0001 (`migrations/postgres`).
"""

from __future__ import annotations

CHANNEL = "cerniq_events"  # the LISTEN/NOTIFY channel of wake-up hints (postgres_wakeup)

# set_config(..., true) is `SET LOCAL` with a bind parameter (SET itself takes none): the
# tenant lasts until the transaction ends, so a pooled connection never carries it over.
SET_TENANT = "SELECT set_config('cerniq.tenant_id', %s, true)"

# The whole happy path of an append, in one statement: the function (migration 0001) binds
# the transaction to the tenant and inserts only if the stream is still at the expected
# version. Called on an autocommit connection it is its own transaction: one round trip
# per append. A batch goes as arrays, in binary (%b: no text quoting of every JSON
# payload); a single event, the common case, as plain values (arrays cost as much again
# as the insert).
APPEND = (
    "SELECT * FROM cerniq_append_events(%(tenant)s, %(stream)s, %(expected)s, %(ids)b,"
    " %(types)b, %(schemas)b, %(data)b::json[], %(sealed)b, %(occurred)b,"
    " %(metadata)s::jsonb)"
)
APPEND_ONE = (
    "SELECT * FROM cerniq_append_event(%(tenant)s, %(stream)s, %(expected)s, %(id)s,"
    " %(type)s, %(schema)s, %(datum)s::json, %(seal)s, %(at)s, %(metadata)s::jsonb)"
)

# Where the ids of a refused append are stored already: one unique-index probe per id.
# OFFSET 0 keeps the subquery a separate, per-id plan. Joined or written `= ANY(ids)`, the
# planner may prefer the policy's `tenant_id = current_setting(...)` (it looks selective)
# and scan the tenant's whole index range instead.
STORED = """
SELECT k.event_id, k.tenant_id, k.stream_id, k.global_position
FROM unnest(%(ids)b::text[]) AS i(id)
CROSS JOIN LATERAL (SELECT * FROM events e WHERE e.event_id = i.id OFFSET 0) AS k
"""

# data and metadata as text: json/jsonb would otherwise be parsed by psycopg (json.loads)
# and then again by msgspec; as text they go to one typed msgspec decode. tx_id as int8
# (xid8 has no psycopg loader; 64-bit xids fit), under another name: left as `tx_id`, the
# cast would shadow the column in ORDER BY tx_id, and the follower's query would sort the
# whole rest of the log by the cast value instead of walking its index.
COLUMNS = """global_position, tx_id::text::int8 AS tx, tenant_id, stream_id, stream_version,
    event_id, event_type, schema_version, data::text, sealed, metadata::text,
    occurred_at, recorded_at"""

READ_STREAM = (
    f"SELECT {COLUMNS} FROM events"  # noqa: S608  # constant column list, no input
    " WHERE tenant_id = %s AND stream_id = %s ORDER BY stream_version"
)
STREAM_VERSION = (
    "SELECT coalesce(max(stream_version), 0) FROM events WHERE tenant_id = %s AND stream_id = %s"
)

# GAP SAFETY. Global positions come from an identity sequence, drawn when a row is
# inserted, but rows become visible when their transaction commits: writer A can take
# position 10, writer B position 11, and B commit first. A follower that read "everything
# after 9" and saw 11 would move its checkpoint past 10 and never see A's event.
#
# Each row records its transaction id (`tx_id`, xid8, assigned at the transaction's first
# write). `pg_snapshot_xmin(pg_current_snapshot())` is the oldest transaction still running
# anywhere on the server: every transaction below it has finished, committed or aborted,
# and every transaction yet to write will get an id at or above it (ids only grow, and the
# horizon never moves backwards). So the rows with tx_id below the horizon are final: none
# can still appear among them. The follower reads only those, in (tx_id, position) order,
# and checkpoints (tx_id, position): whatever commits later has a larger key. Writers take
# no lock and never wait for each other; the price is that a follower sees an event only
# once every transaction that started writing before it has ended (a long write
# transaction anywhere on the server delays followers, never loses an event for them).
# The horizon and the rows come from the same statement snapshot, so they agree.
READ_ALL = (
    f"SELECT {COLUMNS} FROM events"  # noqa: S608  # constant column list, no input
    " WHERE (tx_id, global_position) > (%s::xid8, %s)"
    " AND tx_id < pg_snapshot_xmin(pg_current_snapshot())"
    " ORDER BY tx_id, global_position LIMIT %s"
)

# What lies past a follower's checkpoint now: events it can read at once (their writers
# ended since its last read), and events still held back by an older open transaction.
PENDING = (
    "SELECT EXISTS (SELECT FROM events WHERE (tx_id, global_position) > (%(tx)s::xid8, %(pos)s)"
    " AND tx_id < pg_snapshot_xmin(pg_current_snapshot())),"
    " EXISTS (SELECT FROM events WHERE (tx_id, global_position) > (%(tx)s::xid8, %(pos)s)"
    " AND tx_id >= pg_snapshot_xmin(pg_current_snapshot()))"
)

COUNT = "SELECT count(*) FROM events"
COUNT_TENANT = "SELECT count(*) FROM events WHERE tenant_id = %s"


def export_query(*, tenant: bool, stream: bool, until: bool) -> str:
    """The export statement for the filters in use (named parameters, keyset batches).

    Keyset pagination on the primary key: each batch is an index range scan from where the
    last one ended (OFFSET would rescan everything before it).
    """
    filters = ["global_position > %(after)s"]
    if tenant:
        filters.append("tenant_id = %(tenant)s")
    if stream:
        filters.append("stream_id = %(stream)s")
    if until:
        filters.append("occurred_at <= %(until)s")
    return (
        f"SELECT {COLUMNS} FROM events WHERE {' AND '.join(filters)}"  # noqa: S608  # fixed fragments only
        " ORDER BY global_position LIMIT %(limit)s"
    )
