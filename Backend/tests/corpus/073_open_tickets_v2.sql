-- security_invoker: the view checks the caller's privileges and policies, not its owner's.
CREATE OR REPLACE VIEW reporting.open_tickets WITH (security_invoker = true) AS
SELECT t.id,
       t.number,
       o.slug AS organization,
       t.subject,
       t.status,
       t.priority,
       t.created_at,
       now() - t.created_at AS age,
       t.assignee_id,
       app.is_overdue(t) AS overdue
FROM app.tickets t
JOIN app.organizations o ON o.id = t.organization_id
WHERE t.status NOT IN ('solved', 'closed');
