-- Undoes 007_telegram_sessions.sql: the table, with its indexes, trigger and every row in it.
DROP TABLE IF EXISTS telegram.sessions;
