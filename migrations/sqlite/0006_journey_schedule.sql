-- The scheduler's index of journeys (application/scheduler.py): when each journey's next
-- sequence step is due. Same table as migrations/postgres/0006_journey_schedule.sql.
--
-- `dirty` = 1: something happened to the journey since its due time was worked out (set by
-- the scheduler's follower of the log, `ScheduleIndexProjection`); the next tick folds the
-- journey again and writes `due_at` (NULL: nothing to send until another event), the due
-- step's `channel` and the lead's sticky `phone_id` (so a busy phone's leads wait without
-- being read), and `reason` (why nothing is due, for operators). Derived state only:
-- dropping the rows and the `journey_schedule` checkpoint rebuilds it from the log.
CREATE TABLE IF NOT EXISTS journey_schedule (
    tenant_id TEXT    NOT NULL,
    lead_id   TEXT    NOT NULL,
    dirty     INTEGER NOT NULL DEFAULT 1,
    due_at    TEXT,
    channel   TEXT,
    phone_id  TEXT,
    reason    TEXT,
    PRIMARY KEY (tenant_id, lead_id)
);

CREATE INDEX IF NOT EXISTS journey_schedule_due ON journey_schedule (due_at)
    WHERE due_at IS NOT NULL;
-- WhatsApp steps are read per sending phone (new contacts: phone_id IS NULL).
CREATE INDEX IF NOT EXISTS journey_schedule_phone ON journey_schedule (tenant_id, phone_id, due_at)
    WHERE channel = 'WHATSAPP';
CREATE INDEX IF NOT EXISTS journey_schedule_dirty ON journey_schedule (dirty)
    WHERE dirty = 1;

-- Review SLA breaches already alerted (application/upkeep.py): each breach alerts once.
CREATE TABLE IF NOT EXISTS review_sla_alerts (
    tenant_id  TEXT NOT NULL,
    review_id  TEXT NOT NULL,
    alerted_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, review_id)
);

-- Company-level stop (application/company_stop.py) finds a company's other leads by
-- fiscal code within the tenant.
CREATE INDEX IF NOT EXISTS gold_lead_journey_fiscal_code ON gold_lead_journey (tenant_id, fiscal_code)
    WHERE fiscal_code IS NOT NULL;
