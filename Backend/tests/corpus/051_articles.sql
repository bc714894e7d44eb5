-- The knowledge base. search_document is generated, so it can never disagree with the text.
CREATE TABLE IF NOT EXISTS app.articles (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES app.organizations (id) ON DELETE CASCADE,
    slug             app.slug NOT NULL,
    title            text NOT NULL,
    body             text NOT NULL DEFAULT '',
    language         regconfig NOT NULL DEFAULT 'english',
    published_at     timestamptz,
    search_document  tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple'::regconfig, coalesce(title, '')), 'A')
        || setweight(to_tsvector('simple'::regconfig, coalesce(body, '')), 'B')
    ) STORED,
    CONSTRAINT articles_slug_per_org UNIQUE (organization_id, slug)
);

CREATE INDEX IF NOT EXISTS articles_search_document_idx ON app.articles USING gin (search_document);

INSERT INTO app.articles (organization_id, slug, title, body, published_at)
SELECT id, 'getting-started', 'Getting started', 'Create your first ticket from the inbox.', timestamptz '2023-01-15 09:00:00+00'
FROM app.organizations WHERE slug <> 'system'
ON CONFLICT ON CONSTRAINT articles_slug_per_org DO NOTHING;
