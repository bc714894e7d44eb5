-- Where a ticket came from. Added nullable, backfilled, then tightened: three steps, one file.
ALTER TABLE app.tickets ADD COLUMN IF NOT EXISTS channel text;

UPDATE app.tickets
SET channel = CASE WHEN metadata OPERATOR(extensions.?) 'email_message_id' THEN 'email' ELSE 'web' END
WHERE channel IS NULL;

ALTER TABLE app.tickets ALTER COLUMN channel SET DEFAULT 'web';
ALTER TABLE app.tickets ALTER COLUMN channel SET NOT NULL;

DO $$
BEGIN
    ALTER TABLE app.tickets
        ADD CONSTRAINT tickets_channel_known CHECK (channel IN ('web', 'email', 'phone', 'chat', 'api'));
EXCEPTION
    WHEN duplicate_object THEN NULL;
END
$$;
