-- One schema per domain. Tables reference across schemas only towards messaging.chats,
-- the conversation that todos, agent executions and Telegram sessions hang off.
CREATE SCHEMA IF NOT EXISTS messaging;
CREATE SCHEMA IF NOT EXISTS tasks;
CREATE SCHEMA IF NOT EXISTS agents;
CREATE SCHEMA IF NOT EXISTS telegram;

COMMENT ON SCHEMA messaging IS 'Conversations: chats and their messages.';
COMMENT ON SCHEMA tasks IS 'Work items the agents track: todos.';
COMMENT ON SCHEMA agents IS 'Agent runs: one execution per invocation, with its input, output and outcome.';
COMMENT ON SCHEMA telegram IS 'Telegram bot state: one session per Telegram chat.';
