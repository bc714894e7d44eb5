-- Undoes 001_create_schemas.sql: drops the four domain schemas. Without CASCADE: a schema that still
-- holds something (a table a later migration made and that was not rolled back, or one made by hand) stops
-- the rollback instead of going with it.
DROP SCHEMA IF EXISTS telegram;
DROP SCHEMA IF EXISTS agents;
DROP SCHEMA IF EXISTS tasks;
DROP SCHEMA IF EXISTS messaging;
