-- Roles belong to the cluster, not to the database: another database on the same server (a second
-- environment, a test run) may have created them already, so create each one only when it is missing.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'helpdesk_owner') THEN
        CREATE ROLE helpdesk_owner NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'helpdesk_app') THEN
        CREATE ROLE helpdesk_app NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'helpdesk_readonly') THEN
        CREATE ROLE helpdesk_readonly NOLOGIN;
    END IF;
END
$$;
