-- The new status in use. PostgreSQL lets a new enum value be used only once the ALTER TYPE that added
-- it has committed, so this has to be a separate file from 031.
SET search_path = app, extensions, public;

UPDATE tickets SET status = 'on_hold' WHERE status = 'pending' AND metadata ? 'waiting_on';

CREATE INDEX IF NOT EXISTS tickets_on_hold_idx ON tickets (organization_id, updated_at) WHERE status = 'on_hold';

CREATE OR REPLACE VIEW reporting.on_hold_tickets AS
SELECT id, number, organization_id, subject, metadata -> 'waiting_on' AS waiting_on, updated_at
FROM tickets
WHERE status = 'on_hold';

RESET search_path;

GRANT SELECT ON reporting.on_hold_tickets TO helpdesk_readonly;
