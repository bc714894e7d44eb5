-- Added NOT VALID so that the deploy takes only a brief lock; 047 validates it.
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM pg_constraint
        WHERE conrelid = 'app.tickets'::regclass AND conname = 'tickets_closed_after_created'
    ) THEN
        ALTER TABLE app.tickets
            ADD CONSTRAINT tickets_closed_after_created CHECK (closed_at IS NULL OR closed_at >= created_at) NOT VALID;
    END IF;
END
$$;
