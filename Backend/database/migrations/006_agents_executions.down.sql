-- Undoes 006_agents_executions.sql: the table, with its indexes, trigger and every row in it.
DROP TABLE IF EXISTS agents.executions;
