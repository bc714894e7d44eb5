-- Agents search subjects by fragment ("invoice", "passwort"): trigram indexes. The table is still
-- small enough to index inside the deploy's transaction.
CREATE INDEX IF NOT EXISTS tickets_subject_trgm_idx ON app.tickets USING gin (subject extensions.gin_trgm_ops);
CREATE INDEX IF NOT EXISTS users_name_trgm_idx
    ON app.users USING gist ((first_name || ' ' || last_name) extensions.gist_trgm_ops);
