-- Undoes 008_application_role.sql's grants: agent_backend_app keeps no privilege in the domain schemas
-- or on the ledger, and tables made later get none by default. Two things stay, on purpose:
--   * the role itself: it is cluster-wide, so other databases on the server and the logins that are its
--     members may still use it (drop it by hand, as an administrator, when nothing does);
--   * REVOKE CREATE ON SCHEMA public FROM PUBLIC: giving every role CREATE in public back would reopen
--     what the hardening closed (and PostgreSQL 15 and later never grant it anyway).
-- Idempotent: without the role (dropped by hand) there is nothing to revoke.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'agent_backend_app') THEN
        RETURN;
    END IF;
    ALTER DEFAULT PRIVILEGES IN SCHEMA messaging, tasks, agents, telegram
        REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM agent_backend_app;
    ALTER DEFAULT PRIVILEGES IN SCHEMA messaging, tasks, agents, telegram
        REVOKE USAGE, SELECT ON SEQUENCES FROM agent_backend_app;
    REVOKE SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA messaging, tasks, agents, telegram
        FROM agent_backend_app;
    REVOKE USAGE ON SCHEMA messaging, tasks, agents, telegram FROM agent_backend_app;
    IF pg_catalog.to_regclass('public.migration_ledger') IS NOT NULL THEN
        REVOKE SELECT ON public.migration_ledger FROM agent_backend_app;
    END IF;
END
$$;
