-- Tags nest now ("billing.refunds.partial"): ltree paths.
CREATE EXTENSION IF NOT EXISTS ltree WITH SCHEMA extensions;

ALTER TABLE app.tags
    ADD COLUMN IF NOT EXISTS parent_id integer REFERENCES app.tags (id) ON DELETE CASCADE,
    ADD COLUMN IF NOT EXISTS path extensions.ltree;

UPDATE app.tags SET path = extensions.text2ltree(lower(regexp_replace(name::text, '[^A-Za-z0-9]+', '_', 'g')))
WHERE path IS NULL;

-- Sibling names are unique, also at the top level where parent_id is NULL.
DO $$
BEGIN
    ALTER TABLE app.tags ADD CONSTRAINT tags_unique_sibling UNIQUE NULLS NOT DISTINCT (organization_id, parent_id, name);
EXCEPTION
    WHEN duplicate_table THEN NULL;
END
$$;
