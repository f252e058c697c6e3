-- A call's recording (campaigns with `recording` on): the WAV's path on the appliance that
-- took the call, and when recording began (the retention sweep counts from it). Set before the
-- first sample is recorded, so no file exists that the sweep does not know; cleared (and
-- audited) when the sweep deletes the file.
ALTER TABLE calls ADD COLUMN recording_path TEXT;
ALTER TABLE calls ADD COLUMN recorded_at_ms BIGINT;
CREATE INDEX calls_recorded ON calls (recorded_at_ms);
