-- "normal" read as "not important" to customers; the label is now "medium". Defaults and rows
-- follow by themselves: they store the value, not its label.
DO $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_enum WHERE enumtypid = 'app.ticket_priority'::regtype AND enumlabel = 'normal'
    ) THEN
        ALTER TYPE app.ticket_priority RENAME VALUE 'normal' TO 'medium';
    END IF;
END
$$;
