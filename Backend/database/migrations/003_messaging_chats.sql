CREATE TABLE IF NOT EXISTS messaging.chats (
    id          uuid         NOT NULL DEFAULT gen_random_uuid(),
    title       text,
    created_at  timestamptz  NOT NULL DEFAULT now(),
    updated_at  timestamptz  NOT NULL DEFAULT now(),
    metadata    jsonb        NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT pk_chats PRIMARY KEY (id),
    -- text with a CHECK, not varchar(500): changing the limit later is then no table rewrite or long lock.
    CONSTRAINT ck_chats_title_length CHECK (char_length(title) <= 500),
    CONSTRAINT ck_chats_metadata_is_object CHECK (jsonb_typeof(metadata) = 'object')
);

-- Newest conversations first, for listings.
CREATE INDEX IF NOT EXISTS ix_chats_created_at ON messaging.chats (created_at DESC, id DESC);

CREATE OR REPLACE TRIGGER set_updated_at BEFORE UPDATE ON messaging.chats
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

COMMENT ON TABLE messaging.chats IS 'A conversation between a user and the agents.';
COMMENT ON COLUMN messaging.chats.title IS 'Optional human-readable title, at most 500 characters.';
COMMENT ON COLUMN messaging.chats.metadata IS 'Free-form JSON object for integrations; never NULL.';
