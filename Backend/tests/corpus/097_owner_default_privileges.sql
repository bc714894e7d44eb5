-- What helpdesk_owner creates is readable by the reporting role without a GRANT each time.
ALTER DEFAULT PRIVILEGES FOR ROLE helpdesk_owner IN SCHEMA app, reporting GRANT SELECT ON TABLES TO helpdesk_readonly;
ALTER DEFAULT PRIVILEGES FOR ROLE helpdesk_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
GRANT SELECT ON app.webhooks TO helpdesk_readonly;
