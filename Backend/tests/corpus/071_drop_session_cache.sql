-- Sessions moved to Redis.
DROP TABLE IF EXISTS app.session_cache;
DROP VIEW IF EXISTS reporting.legacy_ticket_export;
DROP FUNCTION IF EXISTS app.legacy_ticket_url(integer);
