-- Tenant isolation: the application sets app.current_org for each request.
ALTER TABLE app.tickets ENABLE ROW LEVEL SECURITY;

DO $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM pg_policies WHERE schemaname = 'app' AND tablename = 'tickets' AND policyname = 'tickets_tenant'
    ) THEN
        CREATE POLICY tickets_tenant ON app.tickets
            FOR ALL
            TO helpdesk_app
            USING (organization_id = nullif(current_setting('app.current_org', true), '')::bigint)
            WITH CHECK (organization_id = nullif(current_setting('app.current_org', true), '')::bigint);
    END IF;
END
$$;

DO $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM pg_policies WHERE schemaname = 'app' AND tablename = 'tickets' AND policyname = 'tickets_readonly'
    ) THEN
        CREATE POLICY tickets_readonly ON app.tickets FOR SELECT TO helpdesk_readonly USING (true);
    END IF;
END
$$;
