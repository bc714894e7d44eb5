CREATE TABLE IF NOT EXISTS app.ticket_status_history (
    ticket_id    bigint NOT NULL REFERENCES app.tickets (id) ON DELETE CASCADE,
    old_status   app.ticket_status,
    new_status   app.ticket_status NOT NULL,
    changed_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX IF NOT EXISTS ticket_status_history_ticket_id_idx ON app.ticket_status_history (ticket_id, changed_at);
