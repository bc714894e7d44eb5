-- Slugs and keys sort by code point, whatever the database's locale.
CREATE COLLATION IF NOT EXISTS app.ordinal (locale = 'C');

ALTER TABLE app.email_templates ALTER COLUMN key TYPE text COLLATE app.ordinal;
