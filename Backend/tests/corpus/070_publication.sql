-- The search indexer follows tickets and comments through logical replication.
ALTER TABLE app.ticket_comments REPLICA IDENTITY FULL;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_publication WHERE pubname = 'helpdesk_search') THEN
        CREATE PUBLICATION helpdesk_search FOR TABLE app.tickets, app.ticket_comments
            WITH (publish = 'insert, update, delete');
    END IF;
END
$$;
