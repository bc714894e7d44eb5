-- "body" became "description" in the API two releases ago; the column follows.
DO $$
BEGIN
    IF EXISTS (
        SELECT FROM information_schema.columns
        WHERE table_schema = 'app' AND table_name = 'tickets' AND column_name = 'body'
    ) THEN
        ALTER TABLE app.tickets RENAME COLUMN body TO description;
    END IF;
END
$$;

COMMENT ON COLUMN app.tickets.description IS 'What the requester wrote (Markdown).';
