GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO helpdesk_readonly;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA app TO helpdesk_app;
GRANT SELECT ON ALL TABLES IN SCHEMA "Analytics Raw" TO helpdesk_readonly;
GRANT USAGE ON SCHEMA "Analytics Raw" TO helpdesk_readonly;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
