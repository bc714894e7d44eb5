-- Archiving runs in batches that commit as they go, so it is a procedure the nightly job CALLs (never a
-- migration: a CALL inside the deploy's transaction could not COMMIT). Only its definition is here.
CREATE OR REPLACE PROCEDURE app.archive_closed_tickets(batch_size integer DEFAULT 1000)
    LANGUAGE plpgsql
AS $_$
DECLARE
    moved integer;
BEGIN
    LOOP
        WITH batch AS (
            DELETE FROM app.tickets
            WHERE id IN (SELECT id FROM app.tickets
                         WHERE status = 'closed' AND closed_at < now() - interval '2 years'
                         ORDER BY id LIMIT batch_size)
            RETURNING *
        )
        INSERT INTO app.tickets_archive SELECT b.*, now() FROM batch b;
        GET DIAGNOSTICS moved = ROW_COUNT;
        COMMIT;  -- end this batch's transaction; the next iteration begins another
        EXIT WHEN moved < batch_size;
    END LOOP;
END;
$_$;

-- Strings that hold what looks like SQL: a semicolon, dollar signs, comment markers.
COMMENT ON PROCEDURE app.archive_closed_tickets(integer) IS
    'Moves closed tickets older than 2 years; commits every batch; costs $$ if skipped -- see /* runbook */ §4.';

-- A dollar sign inside an identifier is not a dollar quote.
CREATE TABLE IF NOT EXISTS app.exchange_rates (
    day         date PRIMARY KEY,
    eur$usd     numeric(10, 6) NOT NULL,
    eur$jpy     numeric(10, 4) NOT NULL,
    source      text NOT NULL DEFAULT 'https://rates.example.com/daily -- ECB mirror'
);

CREATE OR REPLACE FUNCTION app.to_usd(amount numeric, on_day date) RETURNS numeric
    LANGUAGE sql STABLE
AS $a1$ SELECT amount * r.eur$usd FROM app.exchange_rates r WHERE r.day = on_day $a1$;
