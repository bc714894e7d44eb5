-- A helper written by a DO block: $$ outside, $body$ for the function, $inner$ for a string in it.
DO $$
BEGIN
    EXECUTE $body$
        CREATE OR REPLACE FUNCTION app.describe_ticket(t app.tickets) RETURNS text
            LANGUAGE sql STABLE
        AS $inner$
            SELECT format('#%s %s [%s/%s]', t.number, t.subject, t.status, t.priority)
                || CASE WHEN t.assignee_id IS NULL THEN $txt$ (unassigned)$txt$ ELSE '' END
        $inner$
    $body$;
END
$$;

COMMENT ON FUNCTION app.describe_ticket(app.tickets) IS $c$One line about a ticket, e.g. "#1042 Cannot log in [open/high]".$c$;
