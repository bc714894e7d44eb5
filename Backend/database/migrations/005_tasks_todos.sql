CREATE TABLE IF NOT EXISTS tasks.todos (
    id            uuid          NOT NULL DEFAULT gen_random_uuid(),
    title         text          NOT NULL,
    description   text,
    status        text          NOT NULL DEFAULT 'pending',
    -- A 1-5 scale held there by ck_todos_priority, so smallint cannot overflow.
    -- squawk-ignore prefer-bigint-over-smallint
    priority      smallint      NOT NULL DEFAULT 3,
    chat_id       uuid,
    due_at        timestamptz,
    completed_at  timestamptz,
    created_at    timestamptz   NOT NULL DEFAULT now(),
    updated_at    timestamptz   NOT NULL DEFAULT now(),
    metadata      jsonb         NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT pk_todos PRIMARY KEY (id),
    -- A todo outlives the chat it came from.
    CONSTRAINT fk_todos_chat_id_chats FOREIGN KEY (chat_id)
        REFERENCES messaging.chats (id) ON DELETE SET NULL,
    -- text with a CHECK, not varchar(500): changing the limit later is then no table rewrite or long lock.
    CONSTRAINT ck_todos_title_length CHECK (char_length(title) <= 500),
    CONSTRAINT ck_todos_title_not_blank CHECK (btrim(title) <> ''),
    CONSTRAINT ck_todos_status CHECK (status IN ('pending', 'in_progress', 'completed', 'cancelled')),
    CONSTRAINT ck_todos_priority CHECK (priority BETWEEN 1 AND 5),
    CONSTRAINT ck_todos_metadata_is_object CHECK (jsonb_typeof(metadata) = 'object')
);

-- get_todos_by_status: newest first, with (created_at, id) as the keyset cursor.
CREATE INDEX IF NOT EXISTS ix_todos_status_created_at ON tasks.todos (status, created_at DESC, id DESC);
-- Unfiltered keyset listing, newest first.
CREATE INDEX IF NOT EXISTS ix_todos_created_at ON tasks.todos (created_at DESC, id DESC);
-- Serves ON DELETE SET NULL from messaging.chats and "todos of a chat".
CREATE INDEX IF NOT EXISTS ix_todos_chat_id ON tasks.todos (chat_id) WHERE chat_id IS NOT NULL;

CREATE OR REPLACE TRIGGER set_updated_at BEFORE UPDATE ON tasks.todos
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

COMMENT ON TABLE tasks.todos IS 'A unit of work an agent or user tracks.';
COMMENT ON COLUMN tasks.todos.status IS 'pending, in_progress, completed or cancelled.';
COMMENT ON COLUMN tasks.todos.priority IS '1 (highest) to 5 (lowest); 3 by default.';
COMMENT ON COLUMN tasks.todos.chat_id IS 'The chat the todo came from, if any; kept as NULL when that chat is deleted.';
COMMENT ON COLUMN tasks.todos.completed_at IS 'When the todo was completed; NULL until then.';
