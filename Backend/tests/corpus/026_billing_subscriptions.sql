-- No organization may hold two subscriptions for overlapping periods: an exclusion constraint,
-- which needs btree_gist for the equality part.
CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA extensions;

CREATE TABLE IF NOT EXISTS billing.subscriptions (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES app.organizations (id),
    plan_id          smallint NOT NULL REFERENCES billing.plans (id),
    seats            integer NOT NULL CHECK (seats > 0),
    active_during    tstzrange NOT NULL,
    CONSTRAINT subscriptions_no_overlap
        EXCLUDE USING gist (organization_id extensions.gist_int8_ops WITH =, active_during WITH &&)
);
