-- The scheduler's index of journeys (application/scheduler.py): when each journey's next
-- sequence step is due. Same columns as migrations/sqlite/0006_journey_schedule.sql.
--
-- `dirty` = 1: something happened to the journey since its due time was worked out (set by
-- the scheduler's follower of the log); the next tick folds the journey again and writes
-- `due_at` (NULL: nothing to send until another event), the due step's
-- `channel` and the lead's sticky `phone_id`, and `reason` (why nothing is due).
-- Derived state only, rebuilt from the log with its checkpoint.
--
-- The scheduler works across tenants as the follower role; the rows hold ids and times,
-- no personal data. The application role does not use the table.
CREATE TABLE journey_schedule (
    tenant_id text        NOT NULL,
    lead_id   text        NOT NULL,
    dirty     integer     NOT NULL DEFAULT 1,
    due_at    timestamptz,
    channel   text,
    phone_id  text,
    reason    text,
    PRIMARY KEY (tenant_id, lead_id)
);

CREATE INDEX journey_schedule_due ON journey_schedule (due_at) WHERE due_at IS NOT NULL;
-- WhatsApp steps are read per sending phone (new contacts: phone_id IS NULL).
CREATE INDEX journey_schedule_phone ON journey_schedule (tenant_id, phone_id, due_at)
    WHERE channel = 'WHATSAPP';
CREATE INDEX journey_schedule_dirty ON journey_schedule (dirty) WHERE dirty = 1;

GRANT SELECT, INSERT, UPDATE, DELETE ON journey_schedule TO cerniq_follower;

-- Review SLA breaches already alerted (application/upkeep.py): each breach alerts once.
-- Written by the SLA check across tenants (follower role); ids and a time only.
CREATE TABLE review_sla_alerts (
    tenant_id  text        NOT NULL,
    review_id  text        NOT NULL,
    alerted_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, review_id)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON review_sla_alerts TO cerniq_follower;

-- Company-level stop (application/company_stop.py) finds a company's other leads by
-- fiscal code within the tenant.
CREATE INDEX gold_lead_journey_fiscal_code ON gold_lead_journey (tenant_id, fiscal_code)
    WHERE fiscal_code IS NOT NULL;
