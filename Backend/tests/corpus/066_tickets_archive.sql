-- Closed tickets older than two years move here; same shape, no triggers, no policies.
CREATE TABLE IF NOT EXISTS app.tickets_archive (
    LIKE app.tickets INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS INCLUDING GENERATED,
    archived_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE app.tickets_archive IS 'Closed tickets older than two years (moved by the nightly job).';
