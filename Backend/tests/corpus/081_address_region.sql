-- Composite types have no ADD ATTRIBUTE IF NOT EXISTS either.
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM pg_attribute
        WHERE attrelid = (SELECT typrelid FROM pg_type WHERE oid = 'app.address'::regtype)
          AND attname = 'region' AND NOT attisdropped
    ) THEN
        ALTER TYPE app.address ADD ATTRIBUTE region text;
    END IF;
END
$$;
