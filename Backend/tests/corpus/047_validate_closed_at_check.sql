ALTER TABLE app.tickets VALIDATE CONSTRAINT tickets_closed_after_created;
