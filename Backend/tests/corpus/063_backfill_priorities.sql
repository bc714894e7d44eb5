-- A long backfill: give it room, then put the session back as it was.
SET statement_timeout = 0;
SET lock_timeout = '30s';
SET work_mem = '64MB';

UPDATE app.tickets
SET priority = 'high'
WHERE priority = 'normal'
  AND (subject ILIKE '%urgent%' OR subject ILIKE '%dringend%' OR subject ILIKE '%至急%');

INSERT INTO app.tags (organization_id, name, color)
SELECT o.id, t.name, t.color
FROM app.organizations o
CROSS JOIN (VALUES ('billing', '#1f77b4'), ('bug', '#d62728'), ('feature-request', '#2ca02c'), ('Überweisung', '#9467bd'))
    AS t (name, color)
WHERE o.slug <> 'system'
ON CONFLICT (organization_id, name) DO NOTHING;

UPDATE app.tags SET path = extensions.text2ltree(lower(regexp_replace(name::text, '[^A-Za-z0-9]+', '_', 'g')))
WHERE path IS NULL;

RESET work_mem;
RESET lock_timeout;
RESET statement_timeout;
