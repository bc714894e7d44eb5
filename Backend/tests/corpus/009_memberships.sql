DO $$
BEGIN
    CREATE TYPE app.member_role AS ENUM ('owner', 'admin', 'agent', 'viewer');
EXCEPTION
    WHEN duplicate_object THEN NULL;
END
$$;

CREATE TABLE IF NOT EXISTS app.memberships (
    organization_id  bigint NOT NULL REFERENCES app.organizations (id) ON DELETE CASCADE,
    user_id          bigint NOT NULL REFERENCES app.users (id) ON DELETE CASCADE,
    role             app.member_role NOT NULL DEFAULT 'agent',
    joined_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, user_id)
);

CREATE INDEX IF NOT EXISTS memberships_user_id_idx ON app.memberships (user_id);
