-- Undoes 004_messaging_messages.sql: the table, with its index, trigger and every row in it.
DROP TABLE IF EXISTS messaging.messages;
