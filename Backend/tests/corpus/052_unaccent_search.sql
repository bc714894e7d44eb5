-- Searching "facade" must find "façade": a text search configuration that strips accents.
CREATE EXTENSION IF NOT EXISTS unaccent WITH SCHEMA extensions;

DO $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM pg_ts_config c JOIN pg_namespace n ON n.oid = c.cfgnamespace
        WHERE n.nspname = 'app' AND c.cfgname = 'simple_unaccent'
    ) THEN
        CREATE TEXT SEARCH CONFIGURATION app.simple_unaccent (COPY = pg_catalog.simple);
        ALTER TEXT SEARCH CONFIGURATION app.simple_unaccent
            ALTER MAPPING FOR hword, hword_part, word WITH extensions.unaccent, simple;
    END IF;
END
$$;

COMMENT ON TEXT SEARCH CONFIGURATION app.simple_unaccent IS 'simple, with accents removed: façade = facade, Ångström = Angstrom.';
