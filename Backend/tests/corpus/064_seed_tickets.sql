-- Demo tickets for the sales environment, and the comments moved out of their metadata, in one statement.
WITH created AS (
    INSERT INTO app.tickets (organization_id, requester_id, subject, description, status, priority, metadata, created_at)
    SELECT o.id, 3, s.subject, s.description, s.status::app.ticket_status, s.priority::app.ticket_priority,
           extensions.hstore(ARRAY['source', 'demo', 'first_comment', s.comment]), timestamptz '2023-02-01 12:00:00+00'
    FROM app.organizations o
    CROSS JOIN (VALUES
        ('Cannot log in', 'Password reset mail never arrives.', 'open', 'high', 'Checked spam already.'),
        ('Rechnung doppelt', 'Wir haben die Rechnung zweimal erhalten.', 'pending', 'normal', 'Bitte um Gutschrift.'),
        ('請求書の宛名変更', '宛名を変更してください。', 'new', 'low', 'よろしくお願いします。'),
        ('Export to CSV', E'The export has "quotes" and a \\ in it.', 'solved', 'normal', 'Fixed in 4.2.')
    ) AS s (subject, description, status, priority, comment)
    WHERE o.slug = 'acme'
      AND NOT EXISTS (SELECT 1 FROM app.tickets t WHERE t.organization_id = o.id AND t.subject = s.subject)
    RETURNING id, requester_id, metadata
)
INSERT INTO app.ticket_comments (ticket_id, author_id, body)
SELECT id, requester_id, metadata OPERATOR(extensions.->) 'first_comment'
FROM created;

-- Fire the deferred assignee check now rather than at commit: while its events are pending, no later
-- statement in the same transaction may ALTER app.tickets ("pending trigger events"), and a deploy may
-- run several files in one transaction. Back to deferred afterwards, as the trigger was declared.
SET CONSTRAINTS app.tickets_assignee_is_member IMMEDIATE;
SET CONSTRAINTS app.tickets_assignee_is_member DEFERRED;
