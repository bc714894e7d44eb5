-- "Tickets of organization X whose metadata has key Y" wants one GIN index over both columns.
CREATE EXTENSION IF NOT EXISTS btree_gin WITH SCHEMA extensions;
