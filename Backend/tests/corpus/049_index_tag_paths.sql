CREATE INDEX CONCURRENTLY IF NOT EXISTS tags_path_idx ON app.tags USING gist (path);
