-- From 2023 on, partitions are monthly and made by a function, which the nightly job calls too.
CREATE OR REPLACE FUNCTION "Analytics Raw".ensure_month_partition(month date) RETURNS text
    LANGUAGE plpgsql
AS $fn$
DECLARE
    first_day date := date_trunc('month', month)::date;
    partition_name text := format('events_%s', to_char(first_day, 'YYYY_MM'));
BEGIN
    EXECUTE format(
        $sql$CREATE TABLE IF NOT EXISTS %I.%I PARTITION OF %I.events
             FOR VALUES FROM (%L) TO (%L)$sql$,
        'Analytics Raw', partition_name, 'Analytics Raw',
        first_day::timestamp AT TIME ZONE 'UTC',
        (first_day + interval '1 month')::timestamp AT TIME ZONE 'UTC'
    );
    RETURN partition_name;
END;
$fn$;

COMMENT ON FUNCTION "Analytics Raw".ensure_month_partition(date) IS
    'Creates the month''s partition of events when it is missing; returns its name.';

SET TIME ZONE 'UTC';
SELECT "Analytics Raw".ensure_month_partition(m::date)
FROM generate_series(date '2023-01-01', date '2023-12-01', interval '1 month') AS m;
RESET TIME ZONE;
