-- The analytics team maintains reporting from now on.
GRANT USAGE, CREATE ON SCHEMA reporting TO helpdesk_owner;
GRANT SELECT ON ALL TABLES IN SCHEMA app TO helpdesk_owner;

ALTER VIEW reporting.agent_load OWNER TO helpdesk_owner;
ALTER MATERIALIZED VIEW reporting.daily_ticket_counts OWNER TO helpdesk_owner;
