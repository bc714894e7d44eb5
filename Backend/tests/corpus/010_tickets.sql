CREATE TABLE IF NOT EXISTS app.tickets (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES app.organizations (id) ON DELETE CASCADE,
    requester_id     bigint REFERENCES app.users (id) ON DELETE SET NULL,
    assignee_id      bigint REFERENCES app.users (id) ON DELETE SET NULL,
    subject          text NOT NULL,
    body             text NOT NULL DEFAULT '',
    status           app.ticket_status NOT NULL DEFAULT 'new',
    priority         app.ticket_priority NOT NULL DEFAULT 'normal',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    closed_at        timestamptz,
    CONSTRAINT tickets_subject_not_blank CHECK (btrim(subject) <> '')
);

CREATE INDEX IF NOT EXISTS tickets_organization_id_status_idx ON app.tickets (organization_id, status);
CREATE INDEX IF NOT EXISTS tickets_assignee_id_idx ON app.tickets (assignee_id) WHERE assignee_id IS NOT NULL;

CREATE OR REPLACE TRIGGER tickets_touch
    BEFORE UPDATE ON app.tickets
    FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at();
