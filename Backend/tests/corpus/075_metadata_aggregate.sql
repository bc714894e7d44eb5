-- Merge many hstores into one (later keys win): for the "all metadata of an organization" report.
CREATE OR REPLACE AGGREGATE app.hstore_merge(extensions.hstore) (
    SFUNC = extensions.hs_concat,
    STYPE = extensions.hstore,
    INITCOND = ''
);

COMMENT ON AGGREGATE app.hstore_merge(extensions.hstore) IS 'hstore || hstore over rows; later rows win.';
