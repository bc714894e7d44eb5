-- Late or far-future events land somewhere instead of failing the insert.
CREATE TABLE IF NOT EXISTS "Analytics Raw".events_default PARTITION OF "Analytics Raw".events DEFAULT;

-- An archive partition made beforehand, then attached (the way a bulk import is done without locking the parent).
CREATE TABLE IF NOT EXISTS "Analytics Raw".events_2021 (LIKE "Analytics Raw".events INCLUDING DEFAULTS);
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM pg_inherits WHERE inhrelid = '"Analytics Raw".events_2021'::regclass
    ) THEN
        ALTER TABLE "Analytics Raw".events_2021
            ADD CONSTRAINT events_2021_bounds
            CHECK (occurred_at >= '2021-01-01 00:00:00+00' AND occurred_at < '2022-01-01 00:00:00+00');
        ALTER TABLE "Analytics Raw".events
            ATTACH PARTITION "Analytics Raw".events_2021
            FOR VALUES FROM ('2021-01-01 00:00:00+00') TO ('2022-01-01 00:00:00+00');
        ALTER TABLE "Analytics Raw".events_2021 DROP CONSTRAINT events_2021_bounds;
    END IF;
END
$$;
