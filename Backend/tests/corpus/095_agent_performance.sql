-- The agent_load report, rebuilt as a materialized view (it was too slow as a view).
DROP VIEW IF EXISTS reporting.agent_load;

CREATE MATERIALIZED VIEW IF NOT EXISTS reporting.agent_performance AS
SELECT m.organization_id,
       m.user_id,
       count(t.id) FILTER (WHERE t.status IN ('open', 'pending', 'on_hold')) AS active_tickets,
       count(t.id) FILTER (WHERE t.status = 'solved') AS solved_tickets,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM t.closed_at - t.created_at))
           FILTER (WHERE t.closed_at IS NOT NULL) AS median_seconds_to_close,
       rank() OVER (PARTITION BY m.organization_id ORDER BY count(t.id) FILTER (WHERE t.status = 'solved') DESC)
           AS solved_rank
FROM app.memberships m
LEFT JOIN app.tickets t ON t.assignee_id = m.user_id AND t.organization_id = m.organization_id
GROUP BY m.organization_id, m.user_id;

CREATE UNIQUE INDEX IF NOT EXISTS agent_performance_key ON reporting.agent_performance (organization_id, user_id);
ALTER MATERIALIZED VIEW reporting.agent_performance OWNER TO helpdesk_owner;
GRANT SELECT ON reporting.agent_performance TO helpdesk_readonly;
