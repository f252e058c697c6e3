-- Callbacks scheduled at the caller's request (their dials are not counted as retries).
ALTER TABLE leads ADD COLUMN callbacks BIGINT NOT NULL DEFAULT 0;
