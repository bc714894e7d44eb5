-- updated_at moved on every UPDATE, even one that changed nothing (the ORM writes all columns).
CREATE OR REPLACE FUNCTION app.touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF NEW IS DISTINCT FROM OLD THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER tickets_touch
    BEFORE UPDATE ON app.tickets
    FOR EACH ROW
    WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION app.touch_updated_at();

COMMENT ON FUNCTION app.touch_updated_at() IS 'BEFORE UPDATE trigger: moves updated_at only when the row changed.';
