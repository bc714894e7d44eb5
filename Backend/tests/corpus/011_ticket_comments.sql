CREATE TABLE IF NOT EXISTS app.ticket_comments (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id   bigint NOT NULL REFERENCES app.tickets (id) ON DELETE CASCADE,
    author_id   bigint REFERENCES app.users (id) ON DELETE SET NULL,
    body        text NOT NULL,
    internal    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS ticket_comments_ticket_id_created_at_idx ON app.ticket_comments (ticket_id, created_at);

COMMENT ON COLUMN app.ticket_comments.internal IS 'Visible to agents only, never to the requester.';
