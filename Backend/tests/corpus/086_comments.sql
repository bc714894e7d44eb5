-- Documentation pass: every object the API team asked about gets a comment.
COMMENT ON TABLE app.tickets IS 'Requests from customers — Anfragen — お問い合わせ. One row per ticket. 🎫';
COMMENT ON COLUMN app.tickets.number IS 'The number customers quote ("#1042"); unique, never reused.';
COMMENT ON COLUMN app.tickets.metadata IS 'Integration key/value pairs (hstore): source, crm_id, email_message_id, …';
COMMENT ON CONSTRAINT tickets_channel_known ON app.tickets IS 'Keep in step with the Channel enum in the API.';
COMMENT ON INDEX app.tickets_subject_trgm_idx IS 'Fragment search on subjects (pg_trgm).';
COMMENT ON TRIGGER tickets_status_history ON app.tickets IS 'One history row per status change.';
COMMENT ON POLICY tickets_tenant ON app.tickets IS 'Rows of the organization in app.current_org only.';
COMMENT ON TYPE app.ticket_status IS 'new → open → pending/on_hold → solved → closed';
COMMENT ON SEQUENCE app.ticket_number_seq IS 'Numbers start at 1000 so that early customers do not look small.';
COMMENT ON MATERIALIZED VIEW reporting.daily_ticket_counts IS 'Refreshed every night at 02:00 UTC.';
COMMENT ON COLUMN "Analytics Raw"."Page Views"."URL" IS 'Full URL, query string included (PII is stripped upstream).';
COMMENT ON FUNCTION app.is_overdue(app.tickets, timestamptz) IS 'True when the first response is late.';
COMMENT ON PROCEDURE app.close_solved_tickets(interval) IS 'Closes solved tickets older than the interval.';
COMMENT ON COLLATION app.ordinal IS 'Byte order (C).';
COMMENT ON EXTENSION citext IS 'case-insensitive character string type';
