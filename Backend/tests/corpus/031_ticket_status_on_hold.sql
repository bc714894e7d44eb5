-- Customers asked for tickets that wait on a third party to stop counting against the SLA.
ALTER TYPE app.ticket_status ADD VALUE IF NOT EXISTS 'on_hold' AFTER 'pending';
