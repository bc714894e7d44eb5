-- An early table: serial ids, as the framework of the day generated them.
CREATE TABLE IF NOT EXISTS app.tags (
    id               serial PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES app.organizations (id) ON DELETE CASCADE,
    name             extensions.citext NOT NULL,
    color            text NOT NULL DEFAULT '#888888' CHECK (color ~ '^#[0-9a-f]{6}$'),
    UNIQUE (organization_id, name)
);

CREATE TABLE IF NOT EXISTS app.ticket_tags (
    ticket_id  bigint NOT NULL REFERENCES app.tickets (id) ON DELETE CASCADE,
    tag_id     integer NOT NULL REFERENCES app.tags (id) ON DELETE CASCADE,
    PRIMARY KEY (ticket_id, tag_id)
);
