-- Per-lead keys that seal personal fields in events (adapters/vault.py).
-- Erasure DELETEs the row: with the key gone, every copy of the log holds only ciphertext.
-- The vault's connection runs with PRAGMA secure_delete so the freed page is zeroed rather
-- than left holding the key bytes.
CREATE TABLE personal_data_keys (
    tenant_id  TEXT NOT NULL,
    lead_id    TEXT NOT NULL,
    key        BLOB NOT NULL CHECK (length(key) = 32),  -- AES-256
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (tenant_id, lead_id)
) WITHOUT ROWID;
