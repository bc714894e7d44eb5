-- The planner misjudged "organization_id = ? AND status = ?": the two are correlated.
CREATE STATISTICS IF NOT EXISTS app.tickets_organization_status (dependencies, ndistinct)
    ON organization_id, status FROM app.tickets;
ANALYZE app.tickets;
