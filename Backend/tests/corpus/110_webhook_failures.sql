-- Written on Windows: CRLF line ends. Nothing here spans lines inside a string.
ALTER TABLE app.webhooks ADD COLUMN IF NOT EXISTS last_failure_at timestamptz;
ALTER TABLE app.webhooks ADD COLUMN IF NOT EXISTS failure_count integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN app.webhooks.failure_count IS 'Consecutive failed deliveries; reset on success.';
