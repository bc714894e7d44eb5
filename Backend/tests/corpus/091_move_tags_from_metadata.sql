-- Tags that integrations wrote into metadata ("tags" => "bug,billing") become real tags.
LOCK TABLE app.ticket_tags IN SHARE ROW EXCLUSIVE MODE;

INSERT INTO app.ticket_tags (ticket_id, tag_id)
SELECT t.id, g.id
FROM app.tickets t
CROSS JOIN LATERAL unnest(string_to_array(t.metadata OPERATOR(extensions.->) 'tags', ',')) AS listed (name)
JOIN app.tags g ON g.organization_id = t.organization_id AND g.name OPERATOR(extensions.=) btrim(listed.name)::extensions.citext
WHERE t.metadata OPERATOR(extensions.?) 'tags'
ON CONFLICT DO NOTHING;

UPDATE app.tickets SET metadata = extensions.delete(metadata, 'tags')
WHERE metadata OPERATOR(extensions.?) 'tags';
