/* Priority from impact and urgency (ITIL): a lookup table and a function.
   /* a nested block comment, which PostgreSQL allows */
   Both statements below are on the lines after this comment. */
CREATE TABLE IF NOT EXISTS app.priority_matrix (impact smallint NOT NULL CHECK (impact BETWEEN 1 AND 3), urgency smallint NOT NULL CHECK (urgency BETWEEN 1 AND 3), priority app.ticket_priority NOT NULL, PRIMARY KEY (impact, urgency));
INSERT INTO app.priority_matrix VALUES (1, 1, 'urgent'), (1, 2, 'high'), (2, 1, 'high'), (1, 3, 'medium'), (2, 2, 'medium'), (3, 1, 'medium'), (2, 3, 'low'), (3, 2, 'low'), (3, 3, 'low') ON CONFLICT DO NOTHING; CREATE OR REPLACE FUNCTION app.priority_for(impact smallint, urgency smallint) RETURNS app.ticket_priority LANGUAGE sql STABLE RETURN (SELECT m.priority FROM app.priority_matrix m WHERE m.impact = priority_for.impact AND m.urgency = priority_for.urgency);
