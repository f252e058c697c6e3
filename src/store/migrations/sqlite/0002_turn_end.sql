-- When a transcript line ended (caller's last speech, or the agent's final mark).
ALTER TABLE turns ADD COLUMN end_ms BIGINT;
