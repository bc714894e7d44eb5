SET maintenance_work_mem = '256MB';
CREATE INDEX CONCURRENTLY IF NOT EXISTS tickets_organization_id_metadata_idx
    ON app.tickets USING gin (organization_id, metadata);
RESET maintenance_work_mem;
