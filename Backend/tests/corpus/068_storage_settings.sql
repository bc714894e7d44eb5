ALTER TABLE app.tickets SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.01);
ALTER TABLE audit.log SET (fillfactor = 100, autovacuum_vacuum_insert_scale_factor = 0.05);
ALTER TABLE app.ticket_comments ALTER COLUMN body SET STORAGE EXTERNAL;
ALTER TABLE app.tickets ALTER COLUMN organization_id SET STATISTICS 500;
