-- Integrations attach free-form key/value pairs to tickets (source=email, crm_id=...).
ALTER TABLE app.tickets
    ADD COLUMN IF NOT EXISTS metadata extensions.hstore NOT NULL DEFAULT ''::extensions.hstore,
    ADD COLUMN IF NOT EXISTS external_ref text;
