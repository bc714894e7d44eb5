CREATE SEQUENCE IF NOT EXISTS billing.invoice_number_seq START WITH 1 MINVALUE 1 CACHE 1;

CREATE OR REPLACE FUNCTION billing.assign_invoice_number() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF NEW.number IS NULL THEN
        -- e.g. INV-2022-000042
        NEW.number := format('INV-%s-%s', to_char(NEW.issued_on, 'YYYY'),
                             lpad(nextval('billing.invoice_number_seq')::text, 6, '0'));
    END IF;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE TRIGGER invoices_assign_number
    BEFORE INSERT ON billing.invoices
    FOR EACH ROW EXECUTE FUNCTION billing.assign_invoice_number();
