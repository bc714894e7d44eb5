CREATE TABLE IF NOT EXISTS telegram.sessions (
    id                uuid         NOT NULL DEFAULT gen_random_uuid(),
    telegram_user_id  bigint       NOT NULL,
    telegram_chat_id  bigint       NOT NULL,
    chat_id           uuid,
    state             jsonb        NOT NULL DEFAULT '{}'::jsonb,
    expires_at        timestamptz,
    created_at        timestamptz  NOT NULL DEFAULT now(),
    updated_at        timestamptz  NOT NULL DEFAULT now(),
    metadata          jsonb        NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT pk_sessions PRIMARY KEY (id),
    -- One live session per Telegram chat: the upsert key.
    CONSTRAINT uq_sessions_telegram_chat_id UNIQUE (telegram_chat_id),
    -- The bot conversation may outlive the chat record.
    CONSTRAINT fk_sessions_chat_id_chats FOREIGN KEY (chat_id)
        REFERENCES messaging.chats (id) ON DELETE SET NULL,
    CONSTRAINT ck_sessions_state_is_object CHECK (jsonb_typeof(state) = 'object'),
    CONSTRAINT ck_sessions_metadata_is_object CHECK (jsonb_typeof(metadata) = 'object')
);

CREATE INDEX IF NOT EXISTS ix_sessions_telegram_user_id ON telegram.sessions (telegram_user_id);
-- Expiring old sessions scans only those that can expire.
CREATE INDEX IF NOT EXISTS ix_sessions_expires_at ON telegram.sessions (expires_at) WHERE expires_at IS NOT NULL;
-- Serves ON DELETE SET NULL from messaging.chats.
CREATE INDEX IF NOT EXISTS ix_sessions_chat_id ON telegram.sessions (chat_id) WHERE chat_id IS NOT NULL;

CREATE OR REPLACE TRIGGER set_updated_at BEFORE UPDATE ON telegram.sessions
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

COMMENT ON TABLE telegram.sessions IS 'Bot conversation state for one Telegram chat.';
COMMENT ON COLUMN telegram.sessions.telegram_user_id IS 'Telegram''s user id (64-bit).';
COMMENT ON COLUMN telegram.sessions.telegram_chat_id IS 'Telegram''s chat id (64-bit, negative for groups); unique.';
COMMENT ON COLUMN telegram.sessions.state IS 'The bot''s conversation state, a JSON object.';
COMMENT ON COLUMN telegram.sessions.expires_at IS 'When the session lapses; NULL for never.';
