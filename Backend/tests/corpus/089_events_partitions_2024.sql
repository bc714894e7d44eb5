SET TIME ZONE 'UTC';
SELECT "Analytics Raw".ensure_month_partition(m::date)
FROM generate_series(date '2024-01-01', date '2024-12-01', interval '1 month') AS m;
RESET TIME ZONE;

-- 2022 is past the retention period: detach the quarters, then drop them.
DO $$
DECLARE
    part regclass;
BEGIN
    FOR part IN
        SELECT c.oid::regclass FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = '"Analytics Raw".events'::regclass AND c.relname LIKE 'events\_2022\_q_'
        ORDER BY c.relname
    LOOP
        EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', '"Analytics Raw".events'::regclass, part);
        EXECUTE format('DROP TABLE %s', part);
    END LOOP;
END
$$;
