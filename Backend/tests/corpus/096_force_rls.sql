-- Policies now apply to the table owner too, and a restrictive policy keeps archived tenants out.
ALTER TABLE app.tickets FORCE ROW LEVEL SECURITY;
ALTER TABLE app.organizations ADD COLUMN IF NOT EXISTS archived boolean NOT NULL DEFAULT false;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_policies WHERE schemaname = 'app' AND policyname = 'tickets_not_archived') THEN
        CREATE POLICY tickets_not_archived ON app.tickets
            AS RESTRICTIVE
            FOR ALL
            TO PUBLIC
            USING (NOT EXISTS (
                SELECT 1 FROM app.organizations o WHERE o.id = tickets.organization_id AND o.archived
            ));
    END IF;
END
$$;
