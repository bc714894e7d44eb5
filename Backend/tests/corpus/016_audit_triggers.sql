-- One trigger per audited table, written once: a DO block whose dynamic SQL is itself dollar-quoted.
DO $do$
DECLARE
    target regclass;
BEGIN
    FOREACH target IN ARRAY ARRAY['app.organizations', 'app.users', 'app.memberships', 'app.tickets']::regclass[]
    LOOP
        EXECUTE format(
            $sql$CREATE OR REPLACE TRIGGER audit_changes
                 AFTER INSERT OR UPDATE OR DELETE ON %s
                 FOR EACH ROW EXECUTE FUNCTION audit.record_change()$sql$,
            target
        );
        RAISE NOTICE 'audit trigger on %', target;
    END LOOP;
END
$do$;
