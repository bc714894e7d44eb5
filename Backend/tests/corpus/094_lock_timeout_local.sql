-- Taking an ACCESS EXCLUSIVE lock on a busy table: give up quickly rather than queue behind a
-- long query and block everyone behind us. SET LOCAL ends with the transaction.
SET LOCAL lock_timeout = '5s';
ALTER TABLE app.ticket_comments ADD COLUMN IF NOT EXISTS edited_at timestamptz;
ALTER TABLE app.ticket_comments ADD COLUMN IF NOT EXISTS via text NOT NULL DEFAULT 'web';
