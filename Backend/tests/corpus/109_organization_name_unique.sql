DO $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM pg_constraint WHERE conrelid = 'app.organizations'::regclass AND conname = 'organizations_name_key'
    ) THEN
        ALTER TABLE app.organizations ADD CONSTRAINT organizations_name_key UNIQUE USING INDEX organizations_name_key;
    END IF;
END
$$;
