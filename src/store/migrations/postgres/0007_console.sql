-- The operator console: accounts (argon2 hashes), login sessions (the cookie's SHA-256, never
-- the cookie itself) with their CSRF token, and each call's path through the script's nodes
-- (a JSON list, for the funnel).
CREATE TABLE operators (
    username       TEXT PRIMARY KEY,
    password_hash  TEXT NOT NULL,
    created_at_ms  BIGINT NOT NULL
);

CREATE TABLE console_sessions (
    token_hash     TEXT PRIMARY KEY,
    username       TEXT NOT NULL REFERENCES operators(username) ON DELETE CASCADE,
    csrf           TEXT NOT NULL,
    created_at_ms  BIGINT NOT NULL,
    expires_at_ms  BIGINT NOT NULL
);

CREATE TABLE console_audit (
    id        BIGSERIAL PRIMARY KEY,
    at_ms     BIGINT NOT NULL,
    username  TEXT NOT NULL,
    action    TEXT NOT NULL,
    detail    TEXT NOT NULL
);

ALTER TABLE calls ADD COLUMN path_json TEXT;
