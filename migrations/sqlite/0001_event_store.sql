-- The event log (embedded mode): one row per event, append-only, mirroring PostgreSQL's table.
--
-- global_position is INTEGER PRIMARY KEY AUTOINCREMENT: an alias of the rowid, so reading the
-- log in position order walks the table's own b-tree. AUTOINCREMENT (not a plain rowid) means
-- a position is never handed out twice, even if the newest row were ever removed, so a
-- follower's checkpoint can never point at a position that later means another event.
--
-- SQLite lets one transaction write at a time and the store appends under BEGIN IMMEDIATE, so
-- positions become visible in the order they were taken: the gap problem of PostgreSQL's
-- sequences cannot happen here. tx_id exists only so rows read the same as PostgreSQL's
-- (checkpoints are (tx_id, position)); it is always 0 in SQLite.
--
-- Times are TEXT in one canonical form, ISO-8601 in UTC with microseconds
-- ('2026-03-02T08:00:00.000000+00:00'), so that comparing the text compares the instants
-- (export's --until filter relies on it).
CREATE TABLE IF NOT EXISTS events (
    global_position INTEGER PRIMARY KEY AUTOINCREMENT,
    tx_id           INTEGER NOT NULL DEFAULT 0,
    tenant_id       TEXT    NOT NULL,
    stream_id       TEXT    NOT NULL,
    stream_version  INTEGER NOT NULL CHECK (stream_version >= 1),
    event_id        TEXT    NOT NULL UNIQUE,
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL CHECK (schema_version >= 1),
    -- The event's JSON with its personal fields replaced by a placeholder...
    data            TEXT    NOT NULL CHECK (json_valid(data)),
    -- ...and those fields encrypted with the lead's key (NULL when the event has none).
    sealed          BLOB,
    metadata        TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    occurred_at     TEXT    NOT NULL,
    recorded_at     TEXT    NOT NULL,
    -- The optimistic-concurrency guard: two writers can never both take version n of a stream.
    -- Its index also serves read_stream and the current-version lookup.
    UNIQUE (tenant_id, stream_id, stream_version)
);

-- `events export --tenant` walks one tenant's events in global order.
CREATE INDEX IF NOT EXISTS events_tenant_position ON events (tenant_id, global_position);

-- The log is the source of truth and is never rewritten: erasure destroys keys, not rows.
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;
