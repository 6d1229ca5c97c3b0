-- The webhook inbox: one row per provider event identity received (application/webhooks.py).
--
-- Intake records the identity before it enqueues the event's processing; a redelivery of
-- the same event finds its row and is acknowledged without being processed again
-- (`INSERT ... ON CONFLICT DO NOTHING RETURNING`: a returned row means "first time").
--
-- NOT TENANT DATA, hence no row-level security: a webhook is recorded before any tenant is
-- known (the tenant is found later, from the lead the event names), and the row holds only
-- a provider's opaque event id, an optional tenant hint and a time; no personal data. The
-- application role writes it outside any tenant binding. Same table as the SQLite one.
CREATE TABLE webhook_inbox (
    provider    text        NOT NULL,
    identity    text        NOT NULL,
    tenant_id   text,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (provider, identity)
);

-- Old identities are purged by age (providers stop retrying after a few days).
CREATE INDEX webhook_inbox_received ON webhook_inbox (received_at);

GRANT SELECT, INSERT, DELETE ON webhook_inbox TO cerniq_app, cerniq_follower;

-- Webhooks find their lead by the lead's phone (TimelinesAI) or address (Instantly), across
-- tenants (application/webhook_lookup.py); without these each lookup scans the table.
CREATE INDEX gold_lead_journey_phone_number ON gold_lead_journey (phone) WHERE phone IS NOT NULL;
CREATE INDEX gold_lead_journey_email ON gold_lead_journey (email) WHERE email IS NOT NULL;
