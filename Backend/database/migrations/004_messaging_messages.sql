CREATE TABLE IF NOT EXISTS messaging.messages (
    id          uuid         NOT NULL DEFAULT gen_random_uuid(),
    chat_id     uuid         NOT NULL,
    role        text         NOT NULL,
    content     text         NOT NULL,
    created_at  timestamptz  NOT NULL DEFAULT now(),
    updated_at  timestamptz  NOT NULL DEFAULT now(),
    metadata    jsonb        NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT pk_messages PRIMARY KEY (id),
    -- A message means nothing without its chat: deleting a chat deletes its messages.
    CONSTRAINT fk_messages_chat_id_chats FOREIGN KEY (chat_id)
        REFERENCES messaging.chats (id) ON DELETE CASCADE,
    CONSTRAINT ck_messages_role CHECK (role IN ('user', 'assistant', 'system', 'tool')),
    CONSTRAINT ck_messages_metadata_is_object CHECK (jsonb_typeof(metadata) = 'object')
);

-- A chat's messages in time order, with (created_at, id) as the keyset cursor; also serves the foreign key.
CREATE INDEX IF NOT EXISTS ix_messages_chat_id_created_at ON messaging.messages (chat_id, created_at, id);

CREATE OR REPLACE TRIGGER set_updated_at BEFORE UPDATE ON messaging.messages
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

COMMENT ON TABLE messaging.messages IS 'One turn of a chat, from a user, an assistant, the system or a tool.';
COMMENT ON COLUMN messaging.messages.role IS 'Who spoke: user, assistant, system or tool.';
COMMENT ON COLUMN messaging.messages.content IS 'The message text, stored verbatim.';
