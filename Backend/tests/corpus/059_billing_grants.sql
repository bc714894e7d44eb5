GRANT USAGE ON SCHEMA billing TO helpdesk_app, helpdesk_readonly;
REVOKE ALL ON ALL TABLES IN SCHEMA billing FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE ON billing.subscriptions, billing.invoices TO helpdesk_app;
GRANT SELECT ON billing.plans TO helpdesk_app, helpdesk_readonly;
GRANT USAGE ON SEQUENCE billing.invoice_number_seq TO helpdesk_app;

-- The reporting role sees amounts and dates, not who was billed.
GRANT SELECT (id, issued_on, due_on, total, currency, paid_at) ON billing.invoices TO helpdesk_readonly;
