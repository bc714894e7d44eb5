-- Superseded by tickets_organization_id_metadata_idx (079).
DROP INDEX CONCURRENTLY IF EXISTS app.tickets_metadata_idx;
