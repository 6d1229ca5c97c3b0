-- The WhatsApp phone pool's read model: one row per number of a tenant's pool.
--
-- A projection of the phone streams (`phone:<id>` in the events table), applied INLINE in
-- the append's transaction (application/projections/phones.py). It carries the stream
-- version it has folded and takes event v only onto v - 1, so it is idempotent. Same
-- tables, columns and keys as migrations/postgres/0004_phones.sql; value forms as in 0003
-- (times canonical ISO text, dates 'YYYY-MM-DD', booleans 0/1).
--
-- `id` derives from (tenant, E.164 number), so a number has one row per tenant; the UNIQUE
-- constraint states that rule here too.
CREATE TABLE IF NOT EXISTS wa_phone_numbers (
    tenant_id              TEXT    NOT NULL,
    id                     TEXT    NOT NULL,
    phone_number           TEXT    NOT NULL,
    label                  TEXT,
    timelinesai_account_id TEXT,
    status                 TEXT    NOT NULL CHECK (status IN
        ('ACTIVE', 'PAUSED', 'OFFLINE', 'BANNED', 'RECONNECTING', 'QUARANTINE')),
    status_reason          TEXT,
    status_changed_at      TEXT    NOT NULL,
    daily_limit            INTEGER NOT NULL DEFAULT 200 CHECK (daily_limit >= 0),
    warmup_started         TEXT,
    reputation_score       INTEGER CHECK (reputation_score BETWEEN 0 AND 100),
    connected              INTEGER,
    last_health_check_at   TEXT,
    version                INTEGER NOT NULL,
    created_at             TEXT    NOT NULL,
    -- The occurred_at of the phone's latest event (never the wall clock: replay equals live).
    updated_at             TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, phone_number)
);

CREATE INDEX IF NOT EXISTS wa_phone_numbers_status ON wa_phone_numbers (tenant_id, status);

-- Restoring the guardian's counters counts each phone's new conversations queued today
-- from the communication log (see the PostgreSQL migration).
CREATE INDEX IF NOT EXISTS gold_communication_log_new_contacts
    ON gold_communication_log (tenant_id, phone_id, created_at) WHERE quota_cost = 1;
