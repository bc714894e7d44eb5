-- Customers quote ticket numbers on the phone: a readable number, separate from the key.
CREATE SEQUENCE IF NOT EXISTS app.ticket_number_seq AS bigint START WITH 1000 INCREMENT BY 1 NO CYCLE;

ALTER TABLE app.tickets ADD COLUMN IF NOT EXISTS number bigint NOT NULL DEFAULT nextval('app.ticket_number_seq');
ALTER SEQUENCE app.ticket_number_seq OWNED BY app.tickets.number;

DO $$
BEGIN
    ALTER TABLE app.tickets ADD CONSTRAINT tickets_number_key UNIQUE (number);
EXCEPTION
    WHEN duplicate_table OR duplicate_object THEN NULL;
END
$$;
