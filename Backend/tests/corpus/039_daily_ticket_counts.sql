CREATE MATERIALIZED VIEW IF NOT EXISTS reporting.daily_ticket_counts AS
SELECT organization_id,
       date_trunc('day', created_at AT TIME ZONE 'UTC')::date AS day,
       count(*) AS created,
       count(*) FILTER (WHERE status IN ('solved', 'closed')) AS resolved
FROM app.tickets
GROUP BY 1, 2
WITH NO DATA;

-- REFRESH ... CONCURRENTLY needs a unique index.
CREATE UNIQUE INDEX IF NOT EXISTS daily_ticket_counts_key ON reporting.daily_ticket_counts (organization_id, day);
REFRESH MATERIALIZED VIEW reporting.daily_ticket_counts;

GRANT SELECT ON reporting.daily_ticket_counts TO helpdesk_readonly;
