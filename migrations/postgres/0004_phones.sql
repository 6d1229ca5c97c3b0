-- The WhatsApp phone pool's read model: one row per number of a tenant's pool.
--
-- A projection of the phone streams (`phone:<id>` in the events table), applied INLINE in
-- the append's transaction (application/projections/phones.py), so `phones list` and the
-- API read their own writes. Like the journey row, it carries the stream version it has
-- folded (`version`) and takes event v only onto v - 1: idempotent, so `replay` can rebuild
-- it while appends go on. Same tables, columns and keys as migrations/sqlite/0004_phones.sql.
--
-- The phone number is the tenant's business data, not a data subject's: stored in clear.
-- `id` derives from (tenant, E.164 number) (domain/phones.py, phone_id_for), so a number
-- has one stream and one row per tenant; the UNIQUE constraint states that rule here too.
-- last_health_check_at, reputation_score and connected come from the latest health check
-- (a check without a score keeps the last known one).
CREATE TABLE wa_phone_numbers (
    tenant_id              text        NOT NULL,
    id                     text        NOT NULL,
    phone_number           text        NOT NULL,
    label                  text,
    timelinesai_account_id text,
    status                 text        NOT NULL CHECK (status IN
        ('ACTIVE', 'PAUSED', 'OFFLINE', 'BANNED', 'RECONNECTING', 'QUARANTINE')),
    status_reason          text,
    status_changed_at      timestamptz NOT NULL,
    daily_limit            integer     NOT NULL DEFAULT 200 CHECK (daily_limit >= 0),
    warmup_started         date,
    reputation_score       smallint    CHECK (reputation_score BETWEEN 0 AND 100),
    connected              boolean,
    last_health_check_at   timestamptz,
    version                integer     NOT NULL,
    created_at             timestamptz NOT NULL,
    -- The occurred_at of the phone's latest event (never the wall clock: replay equals live).
    updated_at             timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT wa_phone_numbers_number_key UNIQUE (tenant_id, phone_number)
);

-- The routing and the guardian's start-up load list a tenant's phones by status.
CREATE INDEX wa_phone_numbers_status ON wa_phone_numbers (tenant_id, status);

-- Restoring the guardian's counters (a Redis that lost them, a restart of the in-process
-- one) counts each phone's new conversations queued today from the communication log: the
-- inline read model, so nothing queued is missed while the quota audit's projector lags.
CREATE INDEX gold_communication_log_new_contacts
    ON gold_communication_log (tenant_id, phone_id, created_at) WHERE quota_cost = 1;

-- Row-level security: the RLS block of 0001_event_store.sql, as 0003 writes it.
ALTER TABLE wa_phone_numbers ENABLE ROW LEVEL SECURITY;
ALTER TABLE wa_phone_numbers FORCE ROW LEVEL SECURITY;
CREATE POLICY wa_phone_numbers_tenant ON wa_phone_numbers TO cerniq_app
    USING (tenant_id = current_setting('cerniq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cerniq.tenant_id', true));
CREATE POLICY wa_phone_numbers_follower ON wa_phone_numbers TO cerniq_follower
    USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON wa_phone_numbers TO cerniq_app, cerniq_follower;
