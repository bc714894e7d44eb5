-- Two idioms for a type that has no IF NOT EXISTS: catch the error, or ask the catalog.
DO $$
BEGIN
    CREATE TYPE app.ticket_status AS ENUM ('new', 'open', 'pending', 'solved', 'closed');
EXCEPTION
    WHEN duplicate_object THEN
        NULL;
END
$$;

DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'app' AND t.typname = 'ticket_priority'
    ) THEN
        CREATE TYPE app.ticket_priority AS ENUM ('low', 'normal', 'high', 'urgent');
    END IF;
END
$$;
