-- Slugs may be longer now, but never start with a digit (they clash with ticket numbers in URLs).
ALTER DOMAIN app.slug DROP CONSTRAINT IF EXISTS slug_shape;

-- Guarded by a catalog look-up, not an EXCEPTION block: after the DROP above, PostgreSQL (15.20, 18.6)
-- refuses ALTER DOMAIN ... ADD CONSTRAINT inside a subtransaction ("cannot start a subtransaction when
-- there are unprocessed inval messages").
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE contypid = 'app.slug'::regtype AND conname = 'slug_shape') THEN
        ALTER DOMAIN app.slug ADD CONSTRAINT slug_shape
            CHECK (VALUE ~ E'^[a-z][a-z0-9]*(-[a-z0-9]+)*$' AND char_length(VALUE) <= 100);
    END IF;
END
$$;
