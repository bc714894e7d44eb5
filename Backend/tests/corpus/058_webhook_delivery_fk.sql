-- A foreign key from a partitioned table: created on the parent, cloned to every partition.
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM pg_constraint
        WHERE conrelid = 'app.webhook_deliveries'::regclass AND conname = 'webhook_deliveries_webhook_id_fkey'
    ) THEN
        ALTER TABLE app.webhook_deliveries
            ADD CONSTRAINT webhook_deliveries_webhook_id_fkey
            FOREIGN KEY (webhook_id) REFERENCES app.webhooks (id) ON DELETE CASCADE;
    END IF;
END
$$;
