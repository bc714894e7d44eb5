-- The public status page calls this as helpdesk_app, which cannot read tickets of other tenants.
CREATE OR REPLACE FUNCTION app.public_ticket_status(ticket_number bigint, requester app.email)
    RETURNS app.ticket_status
    LANGUAGE plpgsql
    STABLE
    SECURITY DEFINER
    SET search_path = app, pg_temp
AS $$
DECLARE
    result app.ticket_status;
BEGIN
    SELECT t.status INTO result
    FROM tickets t JOIN users u ON u.id = t.requester_id
    WHERE t.number = ticket_number AND u.email = requester;
    RETURN result;
END;
$$;

REVOKE EXECUTE ON FUNCTION app.public_ticket_status(bigint, app.email) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.public_ticket_status(bigint, app.email) TO helpdesk_app;
ALTER FUNCTION app.public_ticket_status(bigint, app.email) OWNER TO helpdesk_owner;
