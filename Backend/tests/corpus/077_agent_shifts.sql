-- An agent cannot be on two shifts at once; cancelled shifts do not count.
CREATE TABLE IF NOT EXISTS app.agent_shifts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organization_id  bigint NOT NULL REFERENCES app.organizations (id) ON DELETE CASCADE,
    user_id          bigint NOT NULL,
    during           tstzrange NOT NULL CHECK (NOT isempty(during) AND lower_inc(during)),
    cancelled        boolean NOT NULL DEFAULT false,
    CONSTRAINT agent_shifts_member_fk FOREIGN KEY (organization_id, user_id)
        REFERENCES app.memberships (organization_id, user_id) ON DELETE CASCADE,
    CONSTRAINT agent_shifts_no_overlap EXCLUDE USING gist (user_id WITH =, during WITH &&) WHERE (NOT cancelled)
);
