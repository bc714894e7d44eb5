-- Product analytics: one row per event, partitioned by month so that old months can be dropped.
-- The analysts named the schema; it keeps its capitals and its space.
CREATE SCHEMA IF NOT EXISTS "Analytics Raw";

CREATE TABLE IF NOT EXISTS "Analytics Raw".events (
    id               bigint GENERATED ALWAYS AS IDENTITY,
    organization_id  bigint NOT NULL REFERENCES app.organizations (id) ON DELETE CASCADE,
    occurred_at      timestamptz NOT NULL,
    kind             text NOT NULL,
    payload          jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at);

CREATE INDEX IF NOT EXISTS events_organization_id_occurred_at_idx
    ON "Analytics Raw".events (organization_id, occurred_at);

COMMENT ON TABLE "Analytics Raw".events IS 'Événements produit, partitionnés par mois (UTC).';
