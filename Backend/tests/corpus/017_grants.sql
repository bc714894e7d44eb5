GRANT USAGE ON SCHEMA extensions, app TO helpdesk_app, helpdesk_readonly;
GRANT USAGE ON SCHEMA reporting TO helpdesk_readonly;

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA app TO helpdesk_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA app TO helpdesk_app;
GRANT SELECT ON ALL TABLES IN SCHEMA app TO helpdesk_readonly;

-- Tables created by later migrations get the same privileges without a GRANT in each file.
ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO helpdesk_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT USAGE, SELECT ON SEQUENCES TO helpdesk_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO helpdesk_readonly;

-- The audit log is written by the trigger function only.
REVOKE ALL ON audit.log FROM PUBLIC;
GRANT SELECT ON audit.log TO helpdesk_readonly;
