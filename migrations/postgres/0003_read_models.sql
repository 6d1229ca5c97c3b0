-- Read models: projections of the event log (src/cerniq_outreach/application/projections/).
-- They hold nothing the log does not: `cerniq-outreach replay` deletes their rows and folds
-- the log again, and `replay --verify` compares a rebuilt copy with these tables.
--
-- Same tables, columns and keys as migrations/sqlite/0003_read_models.sql: the projections
-- write one SQL text for both databases (`:name` parameters, INSERT ... ON CONFLICT, no
-- casts). Here times are timestamptz and booleans boolean; the projections pass times as
-- canonical ISO-8601 text, which PostgreSQL reads as timestamptz (psycopg sends text
-- parameters untyped, so the column decides).
--
-- Roles, the tenant setting and the RLS block are those of 0001_event_store.sql. Every
-- read-model table copies that block: cerniq_app (the API, and inline projections inside
-- its append transactions) sees and writes only its tenant's rows; cerniq_follower
-- (projectors, replay) works across tenants.

-- Where each projector stands in the global log, written in the same transaction as its
-- read-model writes (a crash can neither apply an event twice nor skip one). Not a tenant
-- table: one row per projection, for followers only (cerniq_app never follows the log).
CREATE TABLE projector_checkpoints (
    name       text        PRIMARY KEY,
    -- The store's xid8, read as int8 (64-bit transaction ids fit).
    tx_id      bigint      NOT NULL DEFAULT 0,
    position   bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT, UPDATE, DELETE ON projector_checkpoints TO cerniq_follower;

-- One row per lead: the journey as the API lists it (GET /leads). Updated inline, in the
-- append's transaction, so a request reads its own writes. stream_version is the last
-- event folded in; the projection applies version v only onto v - 1, which makes it
-- idempotent (a replay running beside live appends never applies an event twice).
-- Personal columns (company_name, contact_name, phone, email, search_text) are nulled by
-- erasure (projections.journey.scrub_lead).
CREATE TABLE gold_lead_journey (
    tenant_id           text        NOT NULL,
    lead_id             text        NOT NULL,
    company_name        text,
    fiscal_code         text,
    county              text,
    contact_name        text,
    phone               text,
    email               text,
    -- company_name, contact_name, email and phone, lower-cased and without diacritics
    -- (projections.journey.search_key), for `search`: one LIKE, the same on both databases.
    search_text         text,
    stage               text        NOT NULL DEFAULT 'COLD',
    paused_from         text,
    stage_changed_at    timestamptz,
    stage_reason        text,
    sequence_id         text,
    sequence_active     boolean     NOT NULL DEFAULT false,
    sequence_started_at timestamptz,
    current_step        integer,
    snoozed_until       timestamptz,
    assigned_phone_id   text,
    phone_assigned_at   timestamptz,
    human_controlled_by text,
    needs_review        boolean     NOT NULL DEFAULT false,
    open_reviews        integer     NOT NULL DEFAULT 0,
    has_reply           boolean     NOT NULL DEFAULT false,
    reply_count         integer     NOT NULL DEFAULT 0,
    last_reply_at       timestamptz,
    sentiment_score     integer,
    sentiment_label     text,
    opted_out_whatsapp  boolean     NOT NULL DEFAULT false,
    opted_out_email     boolean     NOT NULL DEFAULT false,
    opted_out_all       boolean     NOT NULL DEFAULT false,
    whatsapp_invalid    boolean     NOT NULL DEFAULT false,
    email_invalid       boolean     NOT NULL DEFAULT false,
    first_contact_at    timestamptz,
    last_contact_at     timestamptz,
    last_channel        text,
    -- Filled by the scheduler's work (not an event fold): NULL until then.
    next_action_at      timestamptz,
    messages_sent       integer     NOT NULL DEFAULT 0,
    open_count          integer     NOT NULL DEFAULT 0,
    click_count         integer     NOT NULL DEFAULT 0,
    stream_version      integer     NOT NULL,
    enrolled_at         timestamptz NOT NULL,
    -- When the journey last changed: the occurred_at of its latest event (never the wall
    -- clock, so a rebuilt row equals the live one).
    updated_at          timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, lead_id)
);

-- GET /leads filters (stage, channel, assignedTo, hasReply, needsReview) and sorts
-- (nextActionAt, lastContactAt, sentimentScore), each within one tenant.
CREATE INDEX gold_lead_journey_stage ON gold_lead_journey (tenant_id, stage);
CREATE INDEX gold_lead_journey_channel ON gold_lead_journey (tenant_id, last_channel);
CREATE INDEX gold_lead_journey_phone ON gold_lead_journey (tenant_id, assigned_phone_id);
CREATE INDEX gold_lead_journey_user ON gold_lead_journey (tenant_id, human_controlled_by);
CREATE INDEX gold_lead_journey_review ON gold_lead_journey (tenant_id, needs_review);
CREATE INDEX gold_lead_journey_reply ON gold_lead_journey (tenant_id, has_reply);
CREATE INDEX gold_lead_journey_next_action ON gold_lead_journey (tenant_id, next_action_at);
CREATE INDEX gold_lead_journey_last_contact ON gold_lead_journey (tenant_id, last_contact_at);
CREATE INDEX gold_lead_journey_sentiment ON gold_lead_journey (tenant_id, sentiment_score);
-- The scheduler looks for due journeys across tenants.
CREATE INDEX gold_lead_journey_due ON gold_lead_journey (next_action_at)
    WHERE next_action_at IS NOT NULL;
-- `search` is a substring match (LIKE '%term%'), which a b-tree cannot serve; trigrams can.
-- pg_trgm ships with PostgreSQL (contrib) and is a trusted extension (PostgreSQL 13+): the
-- migration owner may create it without being a superuser.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX gold_lead_journey_search ON gold_lead_journey USING gin (search_text gin_trgm_ops);

-- One row per outbound message (message_id from MessageQueued) and per inbound reply
-- (message_id is the ReplyReceived event id). Statuses never move backwards: a late
-- "delivered" does not demote a "read" (the journey fold's rule). stream_version is the
-- version of the event that created the row: it orders a lead's timeline deterministically.
-- The reply text is kept only as its preview (<= 500 characters), nulled by erasure.
-- Partitioning by created_at (range, monthly) is the path when this table grows past what
-- one index serves well; the primary key would then include created_at.
CREATE TABLE gold_communication_log (
    tenant_id         text        NOT NULL,
    lead_id           text        NOT NULL,
    message_id        text        NOT NULL,
    direction         text        NOT NULL CHECK (direction IN ('OUTBOUND', 'INBOUND')),
    channel           text        NOT NULL,
    status            text        NOT NULL,
    sequence_id       text,
    step              integer,
    template_id       text,
    template_version  integer,
    content_hash      text,
    quota_cost        smallint    NOT NULL DEFAULT 0 CHECK (quota_cost IN (0, 1)),
    phone_id          text,
    provider          text,
    -- The provider's id (TimelinesAI message, Instantly lead, Resend email): webhooks find
    -- their message by it.
    external_id       text,
    preview           text,
    failure_reason    text,
    permanent_failure boolean     NOT NULL DEFAULT false,
    bounce_kind       text,
    stream_version    integer     NOT NULL,
    created_at        timestamptz NOT NULL,
    sent_at           timestamptz,
    delivered_at      timestamptz,
    read_at           timestamptz,
    opened_at         timestamptz,
    clicked_at        timestamptz,
    replied_at        timestamptz,
    bounced_at        timestamptz,
    failed_at         timestamptz,
    cancelled_at      timestamptz,
    updated_at        timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, lead_id, message_id)
);

CREATE INDEX gold_communication_log_external ON gold_communication_log (external_id)
    WHERE external_id IS NOT NULL;
CREATE INDEX gold_communication_log_timeline
    ON gold_communication_log (tenant_id, lead_id, created_at);

-- Audit copy of WhatsApp quota use (a projection of MessageSent); Redis decides, this never.
-- usage_date is the Europe/Bucharest calendar date of the send (the quota's day).
CREATE TABLE wa_quota_usage (
    tenant_id        text        NOT NULL,
    phone_id         text        NOT NULL,
    usage_date       date        NOT NULL,
    new_contacts     integer     NOT NULL DEFAULT 0,
    follow_ups       integer     NOT NULL DEFAULT 0,
    first_message_at timestamptz NOT NULL,
    last_message_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, phone_id, usage_date)
);

CREATE INDEX wa_quota_usage_date ON wa_quota_usage (tenant_id, usage_date DESC);

-- The review desk. priority_rank (LOW 0 .. URGENT 3) sorts the queue most urgent first.
-- Whether an item is breached depends on the time of asking (sla_due_at < now()), so it is
-- a query, not a column: a projection cannot know "now".
CREATE TABLE human_review_queue (
    tenant_id     text        NOT NULL,
    review_id     text        NOT NULL,
    lead_id       text        NOT NULL,
    reason        text        NOT NULL,
    priority      text        NOT NULL,
    priority_rank smallint    NOT NULL,
    sla_due_at    timestamptz NOT NULL,
    status        text        NOT NULL DEFAULT 'OPEN' CHECK (status IN ('OPEN', 'RESOLVED')),
    resolution    text,
    resolved_by   text,
    created_at    timestamptz NOT NULL,
    resolved_at   timestamptz,
    PRIMARY KEY (tenant_id, review_id)
);

CREATE INDEX human_review_queue_desk
    ON human_review_queue (tenant_id, status, priority_rank DESC, sla_due_at);
CREATE INDEX human_review_queue_lead ON human_review_queue (tenant_id, lead_id);

-- Daily counts per tenant, local (Europe/Bucharest) day and channel. Facts about a message
-- count under its channel; facts about the lead (enrolled, opted out, reviews, converted,
-- dead) under channel 'ALL'.
CREATE TABLE outreach_daily_stats (
    tenant_id        text    NOT NULL,
    stat_date        date    NOT NULL,
    channel          text    NOT NULL,
    enrolled         integer NOT NULL DEFAULT 0,
    queued           integer NOT NULL DEFAULT 0,
    sent             integer NOT NULL DEFAULT 0,
    new_contacts     integer NOT NULL DEFAULT 0,
    delivered        integer NOT NULL DEFAULT 0,
    "read"           integer NOT NULL DEFAULT 0,
    opened           integer NOT NULL DEFAULT 0,
    clicked          integer NOT NULL DEFAULT 0,
    replied          integer NOT NULL DEFAULT 0,
    bounced          integer NOT NULL DEFAULT 0,
    failed           integer NOT NULL DEFAULT 0,
    cancelled        integer NOT NULL DEFAULT 0,
    opted_out        integer NOT NULL DEFAULT 0,
    reviews_opened   integer NOT NULL DEFAULT 0,
    reviews_resolved integer NOT NULL DEFAULT 0,
    converted        integer NOT NULL DEFAULT 0,
    dead             integer NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, stat_date, channel)
);

-- The daily-stats projection's own memory of each message's channel: provider events
-- (delivered, read, ...) name only the message. Kept by that projection rather than read
-- from gold_communication_log, so it rebuilds and verifies on its own.
CREATE TABLE outreach_stats_messages (
    tenant_id  text NOT NULL,
    lead_id    text NOT NULL,
    message_id text NOT NULL,
    channel    text NOT NULL,
    PRIMARY KEY (tenant_id, lead_id, message_id)
);

-- Recent events for the dashboard (GET /activity). The summary never holds personal data
-- (no names, addresses or reply text), so erasure has nothing to scrub here.
CREATE TABLE activity_feed (
    global_position bigint      PRIMARY KEY,
    tenant_id       text        NOT NULL,
    lead_id         text        NOT NULL,
    event_type      text        NOT NULL,
    summary         text        NOT NULL,
    actor           text,
    occurred_at     timestamptz NOT NULL
);

CREATE INDEX activity_feed_recent ON activity_feed (tenant_id, global_position DESC);
CREATE INDEX activity_feed_lead ON activity_feed (tenant_id, lead_id, global_position);

-- Row-level security: the RLS block of 0001_event_store.sql, once per tenant table. The
-- follower policy spells out WITH CHECK (true) (the default would be the USING clause, the
-- same thing) because followers write these tables: projectors and replay insert for every
-- tenant. One loop writes the block for each table, so no table can get a variant of it.
DO $rls$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'gold_lead_journey', 'gold_communication_log', 'wa_quota_usage', 'human_review_queue',
        'outreach_daily_stats', 'outreach_stats_messages', 'activity_feed'
    ] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY %I ON %I TO cerniq_app'
            ' USING (tenant_id = current_setting(''cerniq.tenant_id'', true))'
            ' WITH CHECK (tenant_id = current_setting(''cerniq.tenant_id'', true))',
            t || '_tenant', t);
        EXECUTE format(
            'CREATE POLICY %I ON %I TO cerniq_follower USING (true) WITH CHECK (true)',
            t || '_follower', t);
        EXECUTE format(
            'GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO cerniq_app, cerniq_follower', t);
    END LOOP;
END
$rls$;
