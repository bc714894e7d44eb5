-- Password hashes leave app.users (which the readonly role can see) for a table of their own.
CREATE TABLE IF NOT EXISTS app.credentials (
    user_id        bigint PRIMARY KEY REFERENCES app.users (id) ON DELETE CASCADE,
    password_hash  text NOT NULL,
    algorithm      text NOT NULL DEFAULT 'bcrypt' CHECK (algorithm IN ('bcrypt', 'argon2id')),
    changed_at     timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON app.credentials FROM helpdesk_readonly;

DO $$
BEGIN
    IF EXISTS (
        SELECT FROM information_schema.columns
        WHERE table_schema = 'app' AND table_name = 'users' AND column_name = 'password_hash'
    ) THEN
        INSERT INTO app.credentials (user_id, password_hash)
        SELECT id, password_hash FROM app.users WHERE password_hash IS NOT NULL
        ON CONFLICT (user_id) DO NOTHING;
    END IF;
END
$$;

ALTER TABLE app.users DROP COLUMN IF EXISTS password_hash;
