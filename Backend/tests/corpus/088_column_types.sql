ALTER TABLE app.tickets DROP COLUMN IF EXISTS sentiment;
ALTER TABLE app.tags ALTER COLUMN color TYPE varchar(7);
ALTER TABLE app.email_templates ALTER COLUMN subject TYPE varchar(200), ALTER COLUMN locale SET DEFAULT 'en-GB';
