-- Webhooks are owned by the integration team's role, which creates its own objects.
GRANT USAGE, CREATE ON SCHEMA app TO helpdesk_owner;
GRANT USAGE ON SCHEMA extensions TO helpdesk_owner;
GRANT REFERENCES ON app.organizations TO helpdesk_owner;

SET ROLE helpdesk_owner;

CREATE TABLE IF NOT EXISTS app.webhooks (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES app.organizations (id) ON DELETE CASCADE,
    url              text NOT NULL CHECK (url ~ '^https://'),
    secret           text NOT NULL,
    events           text[] NOT NULL DEFAULT ARRAY['ticket.created']::text[],
    active           boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS webhooks_organization_id_idx ON app.webhooks (organization_id) WHERE active;

RESET ROLE;
