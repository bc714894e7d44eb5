ALTER TABLE app.users
    ADD COLUMN IF NOT EXISTS full_name text GENERATED ALWAYS AS (btrim(first_name || ' ' || last_name)) STORED;

COMMENT ON COLUMN app.users.full_name IS 'First and last name as shown in the UI (generated, never written).';
