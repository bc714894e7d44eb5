-- Rebuilt on restart anyway, so not worth the WAL.
CREATE UNLOGGED TABLE IF NOT EXISTS app.session_cache (
    token       text PRIMARY KEY,
    user_id     bigint NOT NULL,
    data        jsonb NOT NULL,
    expires_at  timestamptz NOT NULL
) WITH (fillfactor = 70);
