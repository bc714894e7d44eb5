-- For the finance spreadsheet, which insists on its own column headings.
CREATE OR REPLACE VIEW reporting."Monthly Summary" AS
SELECT o.name AS "Organisation",
       date_trunc('month', t.created_at AT TIME ZONE 'UTC')::date AS "Month",
       count(*) AS "Tickets",
       count(*) FILTER (WHERE t.priority = 'urgent') AS "Dringend / Urgent",
       round(avg(extract(epoch FROM t.closed_at - t.created_at) / 3600)::numeric, 1) AS "Ø Stunden bis Abschluss"
FROM app.tickets t
JOIN app.organizations o ON o.id = t.organization_id
GROUP BY 1, 2;

COMMENT ON VIEW reporting."Monthly Summary" IS 'Für die Buchhaltung: Tickets pro Monat und Organisation.';
ALTER VIEW reporting."Monthly Summary" OWNER TO helpdesk_owner;
