-- Least privilege: the application does its work as `agent_backend_app`, a role that may read and write
-- rows in the four domain schemas and nothing more: no CREATE, ALTER, DROP or TRUNCATE. Migrations keep
-- running as the owning role. The app's login gets the role by membership, e.g. (as an administrator):
--   CREATE ROLE agent_app_login LOGIN PASSWORD '...' IN ROLE agent_backend_app;
-- or, for an existing login, GRANT agent_backend_app TO existing_login;   (docs/security.md)
--
-- The role is cluster-wide, so it is created (and commented) only when missing; creating it needs
-- CREATEROLE, and a runner without it gets a message saying what to ask an administrator for. Everything
-- after that needs only ownership of the schemas, which the runner has.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'agent_backend_app') THEN
        BEGIN
            CREATE ROLE agent_backend_app NOLOGIN;
            COMMENT ON ROLE agent_backend_app IS
                'The agent backend at run time: DML in the messaging, tasks, agents and telegram schemas; no DDL.';
        EXCEPTION
            WHEN duplicate_object THEN
                NULL;  -- another database's migration on this server created it a moment ago
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'role agent_backend_app does not exist and % may not create roles', current_user
                    USING HINT = 'Ask an administrator to run: CREATE ROLE agent_backend_app NOLOGIN;';
        END;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA messaging, tasks, agents, telegram TO agent_backend_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA messaging, tasks, agents, telegram
    TO agent_backend_app;

-- Tables later migrations create (as the role running this one) get the same grants without a migration
-- having to remember them.
ALTER DEFAULT PRIVILEGES IN SCHEMA messaging, tasks, agents, telegram
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO agent_backend_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA messaging, tasks, agents, telegram
    GRANT USAGE, SELECT ON SEQUENCES TO agent_backend_app;

-- The readiness probe (/ready, `migrate health --ready`) reads the migration ledger; reading it is all
-- the app may do there. Skipped when the ledger lives elsewhere (MIGRATIONS_TABLE): grant it by hand.
DO $$
BEGIN
    IF to_regclass('public.migration_ledger') IS NOT NULL THEN
        GRANT SELECT ON public.migration_ledger TO agent_backend_app;
    END IF;
END
$$;

-- PostgreSQL 14 lets every role create objects in `public` (15 and later do not); close that here too.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
