-- Keeps updated_at true for every writer (ORM, raw SQL, psql), not only for code that remembers to set it.
-- Lives in public so each domain schema's tables can share one definition.
CREATE OR REPLACE FUNCTION public.set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION public.set_updated_at() IS
    'BEFORE UPDATE trigger function: sets NEW.updated_at to the transaction time.';
