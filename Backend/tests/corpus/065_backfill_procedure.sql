-- Closing old solved tickets is a procedure: support runs it by hand too.
CREATE OR REPLACE PROCEDURE app.close_solved_tickets(older_than interval DEFAULT interval '30 days')
    LANGUAGE plpgsql
AS $proc$
DECLARE
    closed integer;
BEGIN
    UPDATE app.tickets
    SET status = 'closed', closed_at = greatest(updated_at, created_at)
    WHERE status = 'solved' AND created_at < now() - older_than;
    GET DIAGNOSTICS closed = ROW_COUNT;
    RAISE NOTICE 'closed % ticket(s)', closed;
END;
$proc$;

CALL app.close_solved_tickets();
