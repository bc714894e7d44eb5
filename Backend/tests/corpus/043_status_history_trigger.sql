-- A statement-level trigger with transition tables: one INSERT per UPDATE statement, however many rows.
CREATE OR REPLACE FUNCTION app.record_status_changes() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO app.ticket_status_history (ticket_id, old_status, new_status)
    SELECT n.id, o.status, n.status
    FROM new_rows n
    JOIN old_rows o ON o.id = n.id
    WHERE o.status IS DISTINCT FROM n.status;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER tickets_status_history
    AFTER UPDATE ON app.tickets
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION app.record_status_changes();
