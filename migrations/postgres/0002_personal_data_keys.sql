-- Per-lead keys that seal personal fields in events (adapters/vault.py).
-- Erasure DELETEs the row: with the key gone, every copy of the log (replicas, backups,
-- exports) holds only ciphertext. The dead tuple stays in the table's pages until VACUUM
-- reclaims it; erasure (issue 9) may VACUUM this small table after destroying keys.
CREATE TABLE personal_data_keys (
    tenant_id  text        NOT NULL,
    lead_id    text        NOT NULL,
    key        bytea       NOT NULL CHECK (octet_length(key) = 32),  -- AES-256
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, lead_id)
);

-- The RLS block of 0001_event_store.sql (roles and the tenant setting are explained there).
-- With no tenant bound, current_setting(..., true) is NULL and cerniq_app sees no key.
ALTER TABLE personal_data_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE personal_data_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY personal_data_keys_tenant ON personal_data_keys TO cerniq_app
    USING (tenant_id = current_setting('cerniq.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('cerniq.tenant_id', true));
-- Followers (projectors, replay, export) decode every tenant's events, so they read every key.
CREATE POLICY personal_data_keys_follower ON personal_data_keys TO cerniq_follower USING (true);

-- Narrower grants than the block's: a key is never updated (a lead keeps the key it got,
-- or loses it), and followers only open sealed data, they never create or destroy a key.
GRANT SELECT, INSERT, DELETE ON personal_data_keys TO cerniq_app;
GRANT SELECT ON personal_data_keys TO cerniq_follower;
