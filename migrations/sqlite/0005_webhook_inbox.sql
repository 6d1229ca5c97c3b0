-- The webhook inbox: one row per provider event identity received (application/webhooks.py).
-- Same table as migrations/postgres/0005_webhook_inbox.sql (times canonical ISO text).
CREATE TABLE IF NOT EXISTS webhook_inbox (
    provider    TEXT NOT NULL,
    identity    TEXT NOT NULL,
    tenant_id   TEXT,
    received_at TEXT NOT NULL,
    PRIMARY KEY (provider, identity)
);

CREATE INDEX IF NOT EXISTS webhook_inbox_received ON webhook_inbox (received_at);

-- Webhooks find their lead by phone or address across tenants (application/webhook_lookup.py).
CREATE INDEX IF NOT EXISTS gold_lead_journey_phone_number ON gold_lead_journey (phone)
    WHERE phone IS NOT NULL;
CREATE INDEX IF NOT EXISTS gold_lead_journey_email ON gold_lead_journey (email)
    WHERE email IS NOT NULL;
