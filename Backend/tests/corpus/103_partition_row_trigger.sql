-- A row trigger on the partitioned parent is cloned onto every partition, present and future.
CREATE OR REPLACE FUNCTION "Analytics Raw".normalise_event_kind() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.kind := lower(replace(NEW.kind, ' ', '_'));
    RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER events_normalise_kind
    BEFORE INSERT ON "Analytics Raw".events
    FOR EACH ROW EXECUTE FUNCTION "Analytics Raw".normalise_event_kind();

SET TIME ZONE 'UTC';
SELECT "Analytics Raw".ensure_month_partition(date '2025-01-01');
RESET TIME ZONE;
