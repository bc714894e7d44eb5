-- The audit log is append-only, whoever connects: rules turn UPDATE and DELETE into nothing.
CREATE OR REPLACE RULE log_no_update AS ON UPDATE TO audit.log DO INSTEAD NOTHING;
CREATE OR REPLACE RULE log_no_delete AS ON DELETE TO audit.log DO INSTEAD NOTHING;
