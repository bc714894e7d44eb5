CREATE SCHEMA IF NOT EXISTS app;
CREATE SCHEMA IF NOT EXISTS audit;
CREATE SCHEMA IF NOT EXISTS reporting;

COMMENT ON SCHEMA app IS 'Application tables — Anwendungstabellen — アプリのテーブル';
COMMENT ON SCHEMA audit IS 'Who changed what, and when (append-only).';
COMMENT ON SCHEMA reporting IS 'Views for the analytics team; read-only for everyone else.';
