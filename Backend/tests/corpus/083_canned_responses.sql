SET search_path TO app, extensions, public;

CREATE TABLE IF NOT EXISTS canned_responses (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    title            citext NOT NULL,
    body             text NOT NULL,
    shortcuts        citext[] NOT NULL DEFAULT '{}',
    usage            hstore NOT NULL DEFAULT '',
    UNIQUE (organization_id, title)
);

CREATE INDEX IF NOT EXISTS canned_responses_title_trgm_idx ON canned_responses USING gin (title gin_trgm_ops);

RESET search_path;
