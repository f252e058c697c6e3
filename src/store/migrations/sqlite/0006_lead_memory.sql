-- A lead's memory of its last answered call: a one-line summary and the answers captured so
-- far with that call's time and outcome (JSON), loaded into the next call.
ALTER TABLE leads ADD COLUMN memory_summary TEXT;
ALTER TABLE leads ADD COLUMN memory_json TEXT;
