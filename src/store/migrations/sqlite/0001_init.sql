-- Times are Unix milliseconds (BIGINT) and flags 0/1, so one set of queries serves SQLite and Postgres.
CREATE TABLE campaigns (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    script_toml    TEXT NOT NULL,
    settings_json  TEXT NOT NULL,
    state          TEXT NOT NULL,
    created_at_ms  BIGINT NOT NULL,
    updated_at_ms  BIGINT NOT NULL
);

CREATE TABLE leads (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id         TEXT NOT NULL REFERENCES campaigns(id),
    phone               TEXT NOT NULL,
    name                TEXT,
    fields_json         TEXT NOT NULL,
    timezone            TEXT NOT NULL,
    consent             BIGINT NOT NULL,
    source              TEXT,
    state               TEXT NOT NULL,
    attempts            BIGINT NOT NULL DEFAULT 0,
    next_attempt_at_ms  BIGINT NOT NULL DEFAULT 0,
    claimed_by          TEXT,
    claimed_at_ms       BIGINT,
    outcome             TEXT,
    created_at_ms       BIGINT NOT NULL,
    updated_at_ms       BIGINT NOT NULL,
    UNIQUE (campaign_id, phone)
);
CREATE INDEX leads_due ON leads (campaign_id, state, next_attempt_at_ms);

CREATE TABLE calls (
    sid             TEXT PRIMARY KEY,
    campaign_id     TEXT,
    lead_id         BIGINT,
    from_number     TEXT,
    to_number       TEXT,
    status          TEXT NOT NULL,
    last_sequence   BIGINT NOT NULL DEFAULT -1,
    answered_by     TEXT,
    duration_s      BIGINT,
    outcome         TEXT,
    variables_json  TEXT NOT NULL DEFAULT '{}',
    created_at_ms   BIGINT NOT NULL,
    updated_at_ms   BIGINT NOT NULL,
    ended_at_ms     BIGINT
);
CREATE INDEX calls_campaign ON calls (campaign_id, created_at_ms);
CREATE INDEX calls_lead ON calls (lead_id);

CREATE TABLE call_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    call_sid        TEXT NOT NULL,
    source          TEXT NOT NULL,
    sequence        BIGINT NOT NULL,
    status          TEXT NOT NULL,
    answered_by     TEXT,
    applied         BIGINT NOT NULL,
    params_json     TEXT NOT NULL,
    received_at_ms  BIGINT NOT NULL,
    UNIQUE (call_sid, source, sequence)
);

CREATE TABLE turns (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    call_sid      TEXT NOT NULL,
    idx           BIGINT NOT NULL,
    speaker       TEXT NOT NULL,
    text          TEXT NOT NULL,
    at_ms         BIGINT NOT NULL,
    interrupted   BIGINT NOT NULL,
    latency_json  TEXT,
    UNIQUE (call_sid, idx)
);

CREATE TABLE do_not_call (
    phone        TEXT PRIMARY KEY,
    reason       TEXT NOT NULL,
    source       TEXT NOT NULL,
    added_at_ms  BIGINT NOT NULL
);

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms        BIGINT NOT NULL,
    campaign_id  TEXT NOT NULL,
    lead_id      BIGINT,
    phone        TEXT,
    decision     TEXT NOT NULL,
    reason       TEXT NOT NULL
);
CREATE INDEX audit_campaign ON audit_log (campaign_id, id);
