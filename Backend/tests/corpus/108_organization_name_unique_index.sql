-- Built concurrently first; 109 turns the index into a constraint without another table scan.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS organizations_name_key ON app.organizations (name);
