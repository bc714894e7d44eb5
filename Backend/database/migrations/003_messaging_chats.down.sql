-- Undoes 003_messaging_chats.sql: the table, with its index, trigger and every row in it. Without
-- CASCADE: a table still referencing it (a later migration not rolled back) stops the rollback.
DROP TABLE IF EXISTS messaging.chats;
