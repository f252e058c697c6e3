-- Events for the customers' CRMs, written in the same transaction as the fact they report and
-- delivered from here with retries, so neither a crash nor a CRM outage loses one.
CREATE TABLE crm_outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id      TEXT NOT NULL,
    kind             TEXT NOT NULL,
    event_id         TEXT NOT NULL UNIQUE,
    payload_json     TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms  BIGINT NOT NULL,
    last_status      BIGINT,
    last_error       TEXT,
    created_at_ms    BIGINT NOT NULL,
    delivered_at_ms  BIGINT
);
CREATE INDEX crm_outbox_due ON crm_outbox (state, next_attempt_ms);
CREATE INDEX crm_outbox_campaign ON crm_outbox (campaign_id, id);
