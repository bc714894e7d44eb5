-- Undoes 005_tasks_todos.sql: the table, with its indexes, trigger and every row in it.
DROP TABLE IF EXISTS tasks.todos;
