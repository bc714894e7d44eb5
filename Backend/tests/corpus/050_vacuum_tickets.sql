-- After the backfills above: fresh statistics and visibility map before the traffic comes back.
VACUUM (ANALYZE) app.tickets;
VACUUM (ANALYZE) app.tags;
