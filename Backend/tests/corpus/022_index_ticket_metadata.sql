-- By now app.tickets is large and written all day: build the index without blocking writes.
-- CREATE INDEX CONCURRENTLY cannot run inside a transaction block, hence a file of its own.
CREATE INDEX CONCURRENTLY IF NOT EXISTS tickets_metadata_idx ON app.tickets USING gin (metadata);
