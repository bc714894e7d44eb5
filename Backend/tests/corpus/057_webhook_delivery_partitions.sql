DO $$
DECLARE
    remainder integer;
BEGIN
    FOR remainder IN 0..3 LOOP
        EXECUTE format(
            $q$CREATE TABLE IF NOT EXISTS app.%I PARTITION OF app.webhook_deliveries
               FOR VALUES WITH (MODULUS 4, REMAINDER %s)$q$,
            'webhook_deliveries_p' || remainder, remainder
        );
    END LOOP;
END
$$;
