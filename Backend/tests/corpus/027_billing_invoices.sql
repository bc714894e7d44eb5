CREATE TABLE IF NOT EXISTS billing.invoices (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id  bigint NOT NULL,
    number           text,
    issued_on        date NOT NULL DEFAULT current_date,
    due_on           date NOT NULL,
    total            app.money_amount,
    currency         char(3) NOT NULL DEFAULT 'EUR',
    paid_at          timestamptz,
    CONSTRAINT invoices_due_after_issue CHECK (due_on >= issued_on),
    CONSTRAINT invoices_currency_iso CHECK (currency ~ '^[A-Z]{3}$'),
    -- Invoices and their subscription are written in one transaction, in either order.
    CONSTRAINT invoices_subscription_fk FOREIGN KEY (subscription_id)
        REFERENCES billing.subscriptions (id) DEFERRABLE INITIALLY DEFERRED
);

CREATE UNIQUE INDEX IF NOT EXISTS invoices_number_key ON billing.invoices (number) WHERE number IS NOT NULL;
