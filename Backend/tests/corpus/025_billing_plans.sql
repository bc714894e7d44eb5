-- Billing gets its own schema. This file was written with a search_path instead of qualified names.
CREATE SCHEMA IF NOT EXISTS billing;
SET search_path = billing, app, public;

CREATE TABLE IF NOT EXISTS plans (
    id              smallint PRIMARY KEY,
    code            text NOT NULL UNIQUE,
    name            text NOT NULL,
    monthly_price   money_amount,
    seats_included  integer NOT NULL DEFAULT 1 CHECK (seats_included > 0),
    features        jsonb NOT NULL DEFAULT '{}'::jsonb
);

INSERT INTO plans (id, code, name, monthly_price, seats_included, features)
VALUES (1, 'free', 'Free', 0, 1, '{"sla": false}'),
       (2, 'team', 'Team', 49.00, 5, '{"sla": true, "macros": true}'),
       (3, 'enterprise', 'Enterprise', 499.00, 50, '{"sla": true, "macros": true, "sso": true}')
ON CONFLICT (id) DO NOTHING;

RESET search_path;
