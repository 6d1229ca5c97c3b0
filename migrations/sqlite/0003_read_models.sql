-- Read models: projections of the event log (src/cerniq_outreach/application/projections/).
-- They hold nothing the log does not: `cerniq-outreach replay` deletes their rows and folds
-- the log again, and `replay --verify` compares a rebuilt copy with these tables.
--
-- The same statements run on PostgreSQL (0003 there has the same tables and columns), so:
--   * times are TEXT in the canonical form of 0001 ('2026-03-02T08:00:00.000000+00:00'),
--     UTC with microseconds, so that comparing and sorting the text compares the instants;
--   * dates are TEXT 'YYYY-MM-DD' (local Europe/Bucharest dates where a column says so);
--   * booleans are INTEGER 0/1 (the projections write TRUE/FALSE, which SQLite reads as 1/0).
-- Every read-model table carries tenant_id and every index starts with it: each query the
-- API runs is one tenant's.

-- Where each projector stands in the global log. Written in the same transaction as the
-- projector's read-model writes, so a crash can neither apply an event twice nor skip one.
-- (tx_id, position) is records.Checkpoint; tx_id is always 0 in SQLite.
CREATE TABLE IF NOT EXISTS projector_checkpoints (
    name       TEXT    PRIMARY KEY,
    tx_id      INTEGER NOT NULL DEFAULT 0,
    position   INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- One row per lead: the journey as the API lists it (GET /leads). Updated inline, in the
-- append's transaction, so a request reads its own writes. stream_version is the last
-- event folded in; the projection applies version v only onto v - 1, which makes it
-- idempotent (a replay running beside live appends never applies an event twice).
-- Personal columns (company_name, contact_name, phone, email, search_text) are nulled by
-- erasure (projections.journey.scrub_lead).
CREATE TABLE IF NOT EXISTS gold_lead_journey (
    tenant_id           TEXT    NOT NULL,
    lead_id             TEXT    NOT NULL,
    company_name        TEXT,
    fiscal_code         TEXT,
    county              TEXT,
    contact_name        TEXT,
    phone               TEXT,
    email               TEXT,
    -- company_name, contact_name, email and phone, lower-cased and without diacritics
    -- (projections.journey.search_key), for `search`: one LIKE, the same on both databases.
    search_text         TEXT,
    stage               TEXT    NOT NULL DEFAULT 'COLD',
    paused_from         TEXT,
    stage_changed_at    TEXT,
    stage_reason        TEXT,
    sequence_id         TEXT,
    sequence_active     INTEGER NOT NULL DEFAULT 0,
    sequence_started_at TEXT,
    current_step        INTEGER,
    snoozed_until       TEXT,
    assigned_phone_id   TEXT,
    phone_assigned_at   TEXT,
    human_controlled_by TEXT,
    needs_review        INTEGER NOT NULL DEFAULT 0,
    open_reviews        INTEGER NOT NULL DEFAULT 0,
    has_reply           INTEGER NOT NULL DEFAULT 0,
    reply_count         INTEGER NOT NULL DEFAULT 0,
    last_reply_at       TEXT,
    sentiment_score     INTEGER,
    sentiment_label     TEXT,
    opted_out_whatsapp  INTEGER NOT NULL DEFAULT 0,
    opted_out_email     INTEGER NOT NULL DEFAULT 0,
    opted_out_all       INTEGER NOT NULL DEFAULT 0,
    whatsapp_invalid    INTEGER NOT NULL DEFAULT 0,
    email_invalid       INTEGER NOT NULL DEFAULT 0,
    first_contact_at    TEXT,
    last_contact_at     TEXT,
    last_channel        TEXT,
    -- Filled by the scheduler's work (not an event fold): NULL until then.
    next_action_at      TEXT,
    messages_sent       INTEGER NOT NULL DEFAULT 0,
    open_count          INTEGER NOT NULL DEFAULT 0,
    click_count         INTEGER NOT NULL DEFAULT 0,
    stream_version      INTEGER NOT NULL,
    enrolled_at         TEXT    NOT NULL,
    -- When the journey last changed: the occurred_at of its latest event (never the wall
    -- clock, so a rebuilt row equals the live one).
    updated_at          TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, lead_id)
);

-- GET /leads filters (stage, channel, assignedTo, hasReply, needsReview) and sorts
-- (nextActionAt, lastContactAt, sentimentScore), each within one tenant.
CREATE INDEX IF NOT EXISTS gold_lead_journey_stage ON gold_lead_journey (tenant_id, stage);
CREATE INDEX IF NOT EXISTS gold_lead_journey_channel ON gold_lead_journey (tenant_id, last_channel);
CREATE INDEX IF NOT EXISTS gold_lead_journey_phone ON gold_lead_journey (tenant_id, assigned_phone_id);
CREATE INDEX IF NOT EXISTS gold_lead_journey_user ON gold_lead_journey (tenant_id, human_controlled_by);
CREATE INDEX IF NOT EXISTS gold_lead_journey_review ON gold_lead_journey (tenant_id, needs_review);
CREATE INDEX IF NOT EXISTS gold_lead_journey_reply ON gold_lead_journey (tenant_id, has_reply);
CREATE INDEX IF NOT EXISTS gold_lead_journey_next_action ON gold_lead_journey (tenant_id, next_action_at);
CREATE INDEX IF NOT EXISTS gold_lead_journey_last_contact ON gold_lead_journey (tenant_id, last_contact_at);
CREATE INDEX IF NOT EXISTS gold_lead_journey_sentiment ON gold_lead_journey (tenant_id, sentiment_score);
-- The scheduler looks for due journeys across tenants.
CREATE INDEX IF NOT EXISTS gold_lead_journey_due ON gold_lead_journey (next_action_at)
    WHERE next_action_at IS NOT NULL;

-- One row per outbound message (message_id from MessageQueued) and per inbound reply
-- (message_id is the ReplyReceived event id). Statuses never move backwards: a late
-- "delivered" does not demote a "read" (the journey fold's rule). stream_version is the
-- version of the event that created the row: it orders a lead's timeline deterministically.
-- The reply text is kept only as its preview (<= 500 characters), nulled by erasure.
CREATE TABLE IF NOT EXISTS gold_communication_log (
    tenant_id         TEXT    NOT NULL,
    lead_id           TEXT    NOT NULL,
    message_id        TEXT    NOT NULL,
    direction         TEXT    NOT NULL CHECK (direction IN ('OUTBOUND', 'INBOUND')),
    channel           TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    sequence_id       TEXT,
    step              INTEGER,
    template_id       TEXT,
    template_version  INTEGER,
    content_hash      TEXT,
    quota_cost        INTEGER NOT NULL DEFAULT 0 CHECK (quota_cost IN (0, 1)),
    phone_id          TEXT,
    provider          TEXT,
    -- The provider's id (TimelinesAI message, Instantly lead, Resend email): webhooks find
    -- their message by it.
    external_id       TEXT,
    preview           TEXT,
    failure_reason    TEXT,
    permanent_failure INTEGER NOT NULL DEFAULT 0,
    bounce_kind       TEXT,
    stream_version    INTEGER NOT NULL,
    created_at        TEXT    NOT NULL,
    sent_at           TEXT,
    delivered_at      TEXT,
    read_at           TEXT,
    opened_at         TEXT,
    clicked_at        TEXT,
    replied_at        TEXT,
    bounced_at        TEXT,
    failed_at         TEXT,
    cancelled_at      TEXT,
    updated_at        TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, lead_id, message_id)
);

CREATE INDEX IF NOT EXISTS gold_communication_log_external ON gold_communication_log (external_id)
    WHERE external_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS gold_communication_log_timeline
    ON gold_communication_log (tenant_id, lead_id, created_at);

-- Audit copy of WhatsApp quota use (a projection of MessageSent); Redis decides, this never.
-- usage_date is the Europe/Bucharest calendar date of the send (the quota's day).
CREATE TABLE IF NOT EXISTS wa_quota_usage (
    tenant_id        TEXT    NOT NULL,
    phone_id         TEXT    NOT NULL,
    usage_date       TEXT    NOT NULL,
    new_contacts     INTEGER NOT NULL DEFAULT 0,
    follow_ups       INTEGER NOT NULL DEFAULT 0,
    first_message_at TEXT    NOT NULL,
    last_message_at  TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, phone_id, usage_date)
);

CREATE INDEX IF NOT EXISTS wa_quota_usage_date ON wa_quota_usage (tenant_id, usage_date);

-- The review desk. priority_rank (LOW 0 .. URGENT 3) sorts the queue most urgent first.
-- Whether an item is breached depends on the time of asking (sla_due_at < now), so it is a
-- query, not a column: a projection cannot know "now".
CREATE TABLE IF NOT EXISTS human_review_queue (
    tenant_id     TEXT    NOT NULL,
    review_id     TEXT    NOT NULL,
    lead_id       TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    priority      TEXT    NOT NULL,
    priority_rank INTEGER NOT NULL,
    sla_due_at    TEXT    NOT NULL,
    status        TEXT    NOT NULL DEFAULT 'OPEN' CHECK (status IN ('OPEN', 'RESOLVED')),
    resolution    TEXT,
    resolved_by   TEXT,
    created_at    TEXT    NOT NULL,
    resolved_at   TEXT,
    PRIMARY KEY (tenant_id, review_id)
);

CREATE INDEX IF NOT EXISTS human_review_queue_desk
    ON human_review_queue (tenant_id, status, priority_rank, sla_due_at);
CREATE INDEX IF NOT EXISTS human_review_queue_lead ON human_review_queue (tenant_id, lead_id);

-- Daily counts per tenant, local (Europe/Bucharest) day and channel. Facts about a message
-- count under its channel; facts about the lead (enrolled, opted out, reviews, converted,
-- dead) under channel 'ALL'.
CREATE TABLE IF NOT EXISTS outreach_daily_stats (
    tenant_id        TEXT    NOT NULL,
    stat_date        TEXT    NOT NULL,
    channel          TEXT    NOT NULL,
    enrolled         INTEGER NOT NULL DEFAULT 0,
    queued           INTEGER NOT NULL DEFAULT 0,
    sent             INTEGER NOT NULL DEFAULT 0,
    new_contacts     INTEGER NOT NULL DEFAULT 0,
    delivered        INTEGER NOT NULL DEFAULT 0,
    "read"           INTEGER NOT NULL DEFAULT 0,
    opened           INTEGER NOT NULL DEFAULT 0,
    clicked          INTEGER NOT NULL DEFAULT 0,
    replied          INTEGER NOT NULL DEFAULT 0,
    bounced          INTEGER NOT NULL DEFAULT 0,
    failed           INTEGER NOT NULL DEFAULT 0,
    cancelled        INTEGER NOT NULL DEFAULT 0,
    opted_out        INTEGER NOT NULL DEFAULT 0,
    reviews_opened   INTEGER NOT NULL DEFAULT 0,
    reviews_resolved INTEGER NOT NULL DEFAULT 0,
    converted        INTEGER NOT NULL DEFAULT 0,
    dead             INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, stat_date, channel)
);

-- The daily-stats projection's own memory of each message's channel: provider events
-- (delivered, read, ...) name only the message. Kept by that projection rather than read
-- from gold_communication_log, so it rebuilds and verifies on its own.
CREATE TABLE IF NOT EXISTS outreach_stats_messages (
    tenant_id  TEXT NOT NULL,
    lead_id    TEXT NOT NULL,
    message_id TEXT NOT NULL,
    channel    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, lead_id, message_id)
);

-- Recent events for the dashboard (GET /activity). The summary never holds personal data
-- (no names, addresses or reply text), so erasure has nothing to scrub here.
CREATE TABLE IF NOT EXISTS activity_feed (
    global_position INTEGER PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    lead_id         TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    summary         TEXT NOT NULL,
    actor           TEXT,
    occurred_at     TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS activity_feed_recent ON activity_feed (tenant_id, global_position);
CREATE INDEX IF NOT EXISTS activity_feed_lead ON activity_feed (tenant_id, lead_id, global_position);
