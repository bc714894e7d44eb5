DO $$
BEGIN
    IF to_regtype('app.address') IS NULL THEN
        CREATE TYPE app.address AS (
            street       text,
            city         text,
            postal_code  text,
            country      char(2)
        );
    END IF;
END
$$;

ALTER TABLE app.organizations ADD COLUMN IF NOT EXISTS billing_address app.address;
COMMENT ON TYPE app.address IS 'A postal address; country is ISO 3166-1 alpha-2.';
