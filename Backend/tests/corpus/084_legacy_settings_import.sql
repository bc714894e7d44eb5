-- Imported from the old PHP admin's dump, taken by a pg_dump of the 8.4 days: it turns
-- standard_conforming_strings off and, as pg_dump then did, writes every string holding a backslash in
-- E'' form, which reads the same with the setting on or off.
CREATE TABLE IF NOT EXISTS app.settings (
    key    text PRIMARY KEY,
    value  text NOT NULL
);

SET standard_conforming_strings = off;
SET escape_string_warning = off;
INSERT INTO app.settings (key, value) VALUES
    ('attachments_dir', E'C:\\Helpdesk\\attachments'),
    ('signature', E'Best regards,\nThe Helpdesk team'),
    ('greeting', 'Hello')
ON CONFLICT (key) DO NOTHING;
RESET escape_string_warning;
RESET standard_conforming_strings;
