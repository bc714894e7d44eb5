CREATE OR REPLACE VIEW reporting.open_tickets AS
SELECT t.id,
       t.number,
       o.slug AS organization,
       t.subject,
       t.status,
       t.priority,
       t.created_at,
       now() - t.created_at AS age
FROM app.tickets t
JOIN app.organizations o ON o.id = t.organization_id
WHERE t.status NOT IN ('solved', 'closed');

CREATE OR REPLACE VIEW reporting.agent_load AS
SELECT u.id AS user_id,
       u.email,
       count(t.id) FILTER (WHERE t.status IN ('open', 'pending')) AS active_tickets
FROM app.users u
LEFT JOIN app.tickets t ON t.assignee_id = u.id
GROUP BY u.id, u.email;

GRANT SELECT ON reporting.open_tickets, reporting.agent_load TO helpdesk_readonly;
COMMENT ON VIEW reporting.open_tickets IS 'Tickets not yet solved or closed, with their age.';
