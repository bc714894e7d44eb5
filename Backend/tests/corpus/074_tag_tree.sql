CREATE OR REPLACE RECURSIVE VIEW reporting.tag_tree (organization_id, id, name, depth, trail) AS
    SELECT organization_id, id, name::text, 1, ARRAY[name::text]
    FROM app.tags WHERE parent_id IS NULL
    UNION ALL
    SELECT c.organization_id, c.id, c.name::text, p.depth + 1, p.trail || c.name::text
    FROM app.tags c JOIN tag_tree p ON p.id = c.parent_id;

ALTER VIEW reporting.tag_tree OWNER TO helpdesk_owner;
