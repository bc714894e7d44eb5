-- Labels for the UI in every language we ship; the column names are the translators'.
CREATE TABLE IF NOT EXISTS app."UI Labels" (
    "Key"       text COLLATE app.ordinal PRIMARY KEY,
    "English"   text NOT NULL,
    "Deutsch"   text,
    "Français"  text,
    "日本語"     text,
    "Straße"    text,
    CONSTRAINT "UI Labels_Key_check" CHECK ("Key" ~ '^[a-z_.]+$')
);

INSERT INTO app."UI Labels" ("Key", "English", "Deutsch", "Français", "日本語")
VALUES ('ticket.new', 'New ticket', 'Neues Ticket', 'Nouveau ticket', '新規チケット'),
       ('ticket.on_hold', 'On hold', 'Zurückgestellt', 'En attente', '保留中'),
       ('greeting', 'Hello', 'Grüß Gott', 'Bonjour, ça va ?', 'こんにちは')
ON CONFLICT ("Key") DO NOTHING;

COMMENT ON COLUMN app."UI Labels"."日本語" IS '日本語の表示名';
GRANT SELECT ON app."UI Labels" TO helpdesk_app;
