CREATE TABLE IF NOT EXISTS app.email_templates (
    key        text PRIMARY KEY,
    subject    text NOT NULL,
    body       text NOT NULL,
    locale     text NOT NULL DEFAULT 'en' CHECK (locale ~ E'^[a-z]{2}(-[A-Z]{2})?$')
);

-- E'' strings: \n and \t are real newlines and tabs, \\ a single backslash.
INSERT INTO app.email_templates (key, subject, body, locale)
VALUES ('ticket_created', E'[#{{number}}] {{subject}}',
        E'Hello {{name}},\n\nWe received your request:\n\t{{subject}}\n\nReply above this line.\n-- \nThe Helpdesk', 'en'),
       ('ticket_created_de', E'[#{{number}}] {{subject}}',
        E'Hallo {{name}},\n\nwir haben Ihre Anfrage erhalten.\nMit freundlichen Grüßen\n', 'de'),
       ('path_hint', 'Where to find the log',
        E'Open C:\\ProgramData\\Helpdesk\\logs and attach the newest file.\nIt''s called \'agent.log\'.', 'en')
ON CONFLICT (key) DO NOTHING;

COMMENT ON TABLE app.email_templates IS E'Mustache templates.\nKeys are stable; edit bodies freely.';
