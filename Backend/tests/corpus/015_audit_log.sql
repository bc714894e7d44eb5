CREATE TABLE IF NOT EXISTS audit.log (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_schema  text NOT NULL,
    table_name    text NOT NULL,
    operation     char(1) NOT NULL CHECK (operation IN ('I', 'U', 'D')),
    row_id        bigint,
    old_row       jsonb,
    new_row       jsonb,
    changed_by    text NOT NULL DEFAULT current_user,
    changed_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX IF NOT EXISTS log_table_row_idx ON audit.log (table_schema, table_name, row_id);

CREATE OR REPLACE FUNCTION audit.record_change() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    old_json jsonb := CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) END;
    new_json jsonb := CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) END;
BEGIN
    INSERT INTO audit.log (table_schema, table_name, operation, row_id, old_row, new_row)
    VALUES (TG_TABLE_SCHEMA, TG_TABLE_NAME, left(TG_OP, 1),
            coalesce(new_json ->> 'id', old_json ->> 'id')::bigint, old_json, new_json);
    RETURN NULL;
END;
$fn$;

COMMENT ON FUNCTION audit.record_change() IS $$AFTER trigger: one audit.log row per changed row (the row's "id" if it has one).$$;
