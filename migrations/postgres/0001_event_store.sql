-- The event log: append-only, one row per event, tenant-isolated by row-level security.
--
-- ROLES (cluster-wide, shared by every database on the server, hence created only when
-- missing and never dropped here):
--   cerniq_app       the application's role. Owns nothing, so row-level security always
--                    applies to it. LOGIN without a password: the operator sets one
--                    (ALTER ROLE cerniq_app PASSWORD ...) or logs in as another role that
--                    may SET ROLE cerniq_app (the store runs SET ROLE on every connection).
--   cerniq_follower  log followers and projectors: reads (and writes) across tenants.
-- Migrations run as the owner (a superuser in development, a dedicated owner role in
-- production). FORCE ROW LEVEL SECURITY makes a non-superuser owner subject to the policies
-- as well: an application that is by mistake configured with the owner's login sees no
-- rows at all instead of every tenant's (it fails closed).
--
-- THE TENANT SETTING: a cerniq_app transaction names its tenant with
--     SET LOCAL cerniq.tenant_id = '<tenant>'
-- or, with a bind parameter (SET cannot take one), SELECT set_config('cerniq.tenant_id', $1, true).
-- It is transaction-scoped (LOCAL / is_local = true): a pooled connection never carries one
-- tenant's setting into the next transaction. Unset, current_setting(..., true) is NULL and
-- the policy matches nothing, so a forgotten setting fails closed.
--
-- THE RLS BLOCK every tenant table copies (replace <table>):
--     ALTER TABLE <table> ENABLE ROW LEVEL SECURITY;
--     ALTER TABLE <table> FORCE ROW LEVEL SECURITY;
--     CREATE POLICY <table>_tenant ON <table> TO cerniq_app
--         USING (tenant_id = current_setting('cerniq.tenant_id', true))
--         WITH CHECK (tenant_id = current_setting('cerniq.tenant_id', true));
--     CREATE POLICY <table>_follower ON <table> TO cerniq_follower USING (true);
--     GRANT SELECT, INSERT, UPDATE, DELETE ON <table> TO cerniq_app, cerniq_follower;
-- (events itself grants only SELECT and INSERT: the log is append-only.)
-- A planning trap under these policies: `tenant_id = current_setting(...)` looks selective
-- to the planner, so a lookup by some other unique key (`id = ANY($1)`, a join on it) may
-- be planned as a scan of the tenant's whole index range. Lead indexes with tenant_id, or
-- probe per key (see STORED in adapters/eventstore/postgres_sql.py).

DO $$
BEGIN
    -- Two migrations of two databases on one server can race here (the migration advisory
    -- lock is per database); the loser's CREATE ROLE fails, which only means "exists now".
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'cerniq_app') THEN
        BEGIN
            CREATE ROLE cerniq_app LOGIN NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'cerniq_follower') THEN
        BEGIN
            CREATE ROLE cerniq_follower LOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO cerniq_app, cerniq_follower;

CREATE TABLE events (
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The writing transaction's id, assigned at its first write. Followers read in
    -- (tx_id, global_position) order and only below the oldest running transaction
    -- (pg_snapshot_xmin), so an event whose transaction took a lower position but commits
    -- later is never skipped (see adapters/eventstore/postgres.py, read_all).
    tx_id           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    tenant_id       text NOT NULL,
    stream_id       text NOT NULL,
    stream_version  integer NOT NULL CHECK (stream_version > 0),
    event_id        text NOT NULL,
    event_type      text NOT NULL,
    schema_version  integer NOT NULL,
    -- json, not jsonb: stored as the text msgspec wrote (no parse and re-serialise on
    -- write), and replay reads that text straight back into one typed decode.
    data            json NOT NULL,
    -- Personal fields, encrypted with the lead's key (NULL when the event has none).
    sealed          bytea,
    metadata        jsonb NOT NULL DEFAULT '{}',
    occurred_at     timestamptz NOT NULL,
    -- clock_timestamp(), not now(): the moment of the insert, not of the transaction start.
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Optimistic concurrency: two writers that read the same version both try to insert
    -- version + 1, and this index lets exactly one of them commit.
    CONSTRAINT events_stream_version_key UNIQUE (tenant_id, stream_id, stream_version),
    -- Idempotent append: a retried event is recognised by its id.
    CONSTRAINT events_event_id_key UNIQUE (event_id)
);

-- The followers' read path: WHERE (tx_id, global_position) > checkpoint ORDER BY the same.
CREATE INDEX events_tx_position_idx ON events (tx_id, global_position);
-- No separate (tenant_id, stream_id) index: the unique index above starts with those two
-- columns and serves read_stream and the max(stream_version) lookup of every append; a
-- second copy would only slow every insert down.

ALTER TABLE events ENABLE ROW LEVEL SECURITY;
ALTER TABLE events FORCE ROW LEVEL SECURITY;
CREATE POLICY events_tenant ON events TO cerniq_app
    USING (tenant_id = current_setting('cerniq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cerniq.tenant_id', true));
CREATE POLICY events_follower ON events TO cerniq_follower USING (true);

-- Append-only: no UPDATE, no DELETE for anyone but the owner. Erasure destroys the lead's
-- key (personal_data_keys), never an event.
GRANT SELECT, INSERT ON events TO cerniq_app, cerniq_follower;

-- One append in one statement, so the store pays one round trip per append (autocommit:
-- the call is its own transaction) instead of four (BEGIN, the tenant, the insert, COMMIT).
-- SECURITY INVOKER (the default): it runs with the caller's rights, so the row-level
-- security policies and grants above apply to it unchanged.
--
-- It binds the transaction to the tenant, then inserts the events only if the stream is
-- still at p_expected; otherwise it inserts nothing and the caller reads why. No lock is
-- taken: two writers that both pass the check race on events_stream_version_key, the
-- second waits for the first to commit and then fails with unique_violation (the caller's
-- ConcurrencyConflict); writers to other streams never wait for each other.
--
-- Stored event ids are not looked up here. A retry of an append that succeeded always
-- fails the version check (the stream moved on by its own events), and the caller then
-- recognises the ids; the rare rest (an id reused in another stream, a retry racing its
-- original) meets events_event_id_key. A lookup in here cost more than the insert: next to
-- the policy's `tenant_id = current_setting(...)`, the cached plan scanned the tenant's
-- whole index range for it (the policy's condition looked selective to the planner), so
-- every append grew slower with the tenant's history.
--
-- Arrays make the statement the same for any batch size; ORDER BY n makes global
-- positions follow stream versions within a batch. No NOTIFY in here: inside the appending
-- transaction it would serialise the commits of every append on the server (the store
-- notifies after commit; see adapters/eventstore/postgres_wakeup.py).
CREATE FUNCTION cerniq_append_events(
    p_tenant text, p_stream text, p_expected integer, p_ids text[], p_types text[],
    p_schemas integer[], p_data json[], p_sealed bytea[], p_occurred timestamptz[],
    p_metadata jsonb
) RETURNS TABLE (
    o_position bigint, o_tx_id bigint, o_stream_version integer, o_recorded_at timestamptz
)
LANGUAGE plpgsql AS $fn$
BEGIN
    -- A transaction bound to one tenant (an inline projection's, a caller's) must never be
    -- rebound to another by an append: that would let one tenant's work write another's.
    IF coalesce(current_setting('cerniq.tenant_id', true), '') NOT IN ('', p_tenant) THEN
        RAISE EXCEPTION 'transaction is bound to tenant %, not %',
            current_setting('cerniq.tenant_id', true), p_tenant;
    END IF;
    PERFORM set_config('cerniq.tenant_id', p_tenant, true);
    RETURN QUERY
    INSERT INTO events AS e (tenant_id, stream_id, stream_version, event_id, event_type,
                             schema_version, data, sealed, metadata, occurred_at)
    SELECT p_tenant, p_stream, p_expected + r.n::integer, r.event_id, r.event_type,
           r.schema_version, r.data, r.sealed, p_metadata, r.occurred_at
    FROM unnest(p_ids, p_types, p_schemas, p_data, p_sealed, p_occurred)
         WITH ORDINALITY AS r(event_id, event_type, schema_version, data, sealed,
                              occurred_at, n)
    WHERE (SELECT coalesce(max(v.stream_version), 0) FROM events v
           WHERE v.tenant_id = p_tenant AND v.stream_id = p_stream) = p_expected
    ORDER BY r.n
    RETURNING e.global_position, e.tx_id::text::bigint, e.stream_version, e.recorded_at;
END
$fn$;

-- The same for one event, with plain arguments: most appends carry a single event, and
-- building, sending and unnesting arrays cost as much again as the insert itself.
CREATE FUNCTION cerniq_append_event(
    p_tenant text, p_stream text, p_expected integer, p_id text, p_type text,
    p_schema integer, p_data json, p_sealed bytea, p_occurred timestamptz, p_metadata jsonb
) RETURNS TABLE (
    o_position bigint, o_tx_id bigint, o_stream_version integer, o_recorded_at timestamptz
)
LANGUAGE plpgsql AS $fn$
BEGIN
    -- The tenant guard of cerniq_append_events.
    IF coalesce(current_setting('cerniq.tenant_id', true), '') NOT IN ('', p_tenant) THEN
        RAISE EXCEPTION 'transaction is bound to tenant %, not %',
            current_setting('cerniq.tenant_id', true), p_tenant;
    END IF;
    PERFORM set_config('cerniq.tenant_id', p_tenant, true);
    RETURN QUERY
    INSERT INTO events AS e (tenant_id, stream_id, stream_version, event_id, event_type,
                             schema_version, data, sealed, metadata, occurred_at)
    SELECT p_tenant, p_stream, p_expected + 1, p_id, p_type, p_schema, p_data, p_sealed,
           p_metadata, p_occurred
    WHERE (SELECT coalesce(max(v.stream_version), 0) FROM events v
           WHERE v.tenant_id = p_tenant AND v.stream_id = p_stream) = p_expected
    RETURNING e.global_position, e.tx_id::text::bigint, e.stream_version, e.recorded_at;
END
$fn$;

REVOKE ALL ON FUNCTION cerniq_append_events, cerniq_append_event FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cerniq_append_events, cerniq_append_event
    TO cerniq_app, cerniq_follower;
