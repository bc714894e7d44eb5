-- SQL-standard function bodies (BEGIN ATOMIC ... END): parsed when created, dependencies tracked.
CREATE OR REPLACE FUNCTION app.first_response_due(ticket app.tickets) RETURNS timestamptz
    LANGUAGE sql
    STABLE
BEGIN ATOMIC
    SELECT ticket.created_at + p.first_response_within
    FROM app.sla_policies p
    WHERE p.organization_id = ticket.organization_id AND p.priority = ticket.priority;
END;

CREATE OR REPLACE FUNCTION app.is_overdue(ticket app.tickets, at timestamptz DEFAULT now()) RETURNS boolean
    LANGUAGE sql
    STABLE
BEGIN ATOMIC
    SELECT ticket.status NOT IN ('solved', 'closed') AND app.first_response_due(ticket) < at;
END;
