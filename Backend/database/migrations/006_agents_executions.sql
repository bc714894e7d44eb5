CREATE TABLE IF NOT EXISTS agents.executions (
    id           uuid         NOT NULL DEFAULT gen_random_uuid(),
    agent_name   text         NOT NULL,
    status       text         NOT NULL DEFAULT 'pending',
    input        jsonb        NOT NULL DEFAULT '{}'::jsonb,
    output       jsonb,
    error        text,
    chat_id      uuid,
    started_at   timestamptz  NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    created_at   timestamptz  NOT NULL DEFAULT now(),
    updated_at   timestamptz  NOT NULL DEFAULT now(),
    metadata     jsonb        NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT pk_executions PRIMARY KEY (id),
    -- The run's record outlives the chat that triggered it.
    CONSTRAINT fk_executions_chat_id_chats FOREIGN KEY (chat_id)
        REFERENCES messaging.chats (id) ON DELETE SET NULL,
    CONSTRAINT ck_executions_agent_name_not_blank CHECK (btrim(agent_name) <> ''),
    CONSTRAINT ck_executions_status CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    CONSTRAINT ck_executions_finished_after_start CHECK (finished_at IS NULL OR finished_at >= started_at),
    CONSTRAINT ck_executions_metadata_is_object CHECK (jsonb_typeof(metadata) = 'object')
);

-- Executions by status, newest first.
CREATE INDEX IF NOT EXISTS ix_executions_status_started_at ON agents.executions (status, started_at DESC, id DESC);
-- Serves ON DELETE SET NULL from messaging.chats and "executions of a chat".
CREATE INDEX IF NOT EXISTS ix_executions_chat_id ON agents.executions (chat_id) WHERE chat_id IS NOT NULL;
-- Find executions whose metadata contains a JSON object (metadata @> '{"k": "v"}').
CREATE INDEX IF NOT EXISTS ix_executions_metadata ON agents.executions USING gin (metadata jsonb_path_ops);

CREATE OR REPLACE TRIGGER set_updated_at BEFORE UPDATE ON agents.executions
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

COMMENT ON TABLE agents.executions IS 'One run of an agent: its input, output or error, and timing.';
COMMENT ON COLUMN agents.executions.status IS 'pending, running, succeeded, failed or cancelled.';
COMMENT ON COLUMN agents.executions.output IS 'The result of a successful run; NULL until it finishes.';
COMMENT ON COLUMN agents.executions.error IS 'Why the run failed; NULL unless it failed.';
