-- The other idiom for policies: drop and create again (a rerun rebuilds the same policy).
ALTER TABLE app.ticket_comments ENABLE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS ticket_comments_tenant ON app.ticket_comments;
-- migrate:lint-ignore create-if-not-exists
CREATE POLICY ticket_comments_tenant ON app.ticket_comments
    USING (EXISTS (
        SELECT 1 FROM app.tickets t
        WHERE t.id = ticket_comments.ticket_id
          AND t.organization_id = nullif(current_setting('app.current_org', true), '')::bigint
    ));

COMMENT ON POLICY ticket_comments_tenant ON app.ticket_comments IS 'A comment is visible where its ticket is.';
