CREATE OR REPLACE FUNCTION app.check_assignee_is_member() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF NEW.assignee_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM app.memberships m
        WHERE m.organization_id = NEW.organization_id AND m.user_id = NEW.assignee_id
    ) THEN
        RAISE EXCEPTION 'user % is not a member of organization %', NEW.assignee_id, NEW.organization_id
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'Add the user to the organization first.';
    END IF;
    RETURN NULL;
END;
$$;

-- A constraint trigger has no OR REPLACE: create it once.
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM pg_trigger WHERE tgrelid = 'app.tickets'::regclass AND tgname = 'tickets_assignee_is_member'
    ) THEN
        CREATE CONSTRAINT TRIGGER tickets_assignee_is_member
            AFTER INSERT OR UPDATE OF assignee_id, organization_id ON app.tickets
            DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW EXECUTE FUNCTION app.check_assignee_is_member();
    END IF;
END
$$;
