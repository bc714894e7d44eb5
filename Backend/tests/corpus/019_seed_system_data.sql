-- The built-in organization and the people who ran the beta. Names as they write them.
INSERT INTO app.organizations (slug, name)
VALUES ('system', 'System'),
       ('acme', 'ACME Corporation'),
       ('muller-sohne', 'Müller & Söhne GmbH'),
       ('kaisha', '株式会社サンプル'),
       ('dzyga', 'Дзиґа — студія')
ON CONFLICT (slug) DO NOTHING;

INSERT INTO app.users (id, email, first_name, last_name, is_staff)
OVERRIDING SYSTEM VALUE
VALUES (1, 'root@example.com', 'System', '', true),
       (2, 'zoe@example.com', 'Zoë', 'Ångström', true),
       (3, 'soren@example.dk', 'Søren', 'Kierkegaard', false),
       (4, 'taro@example.jp', '太郎', '山田', false),
       (5, 'olha@example.ua', 'Ольга', 'Коваленко', false),
       (6, 'o.brien@example.ie', 'Seán', 'O''Brien', false)
ON CONFLICT (id) DO NOTHING;

INSERT INTO app.memberships (organization_id, user_id, role)
SELECT o.id, u.id, CASE WHEN u.is_staff THEN 'owner' ELSE 'agent' END::app.member_role
FROM app.organizations o
JOIN app.users u ON (o.slug = 'system') = u.is_staff
ON CONFLICT DO NOTHING;
