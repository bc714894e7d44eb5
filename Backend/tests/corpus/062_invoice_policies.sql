-- Billing admins (new in 061) see their organization's invoices; nobody else does.
ALTER TABLE billing.invoices ENABLE ROW LEVEL SECURITY;

CREATE OR REPLACE FUNCTION billing.may_see_invoices(org bigint) RETURNS boolean
    LANGUAGE sql
    STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (
        SELECT 1 FROM app.memberships m
        JOIN app.users u ON u.id = m.user_id
        WHERE m.organization_id = org
          AND m.role IN ('owner', 'billing_admin')
          AND u.email OPERATOR(extensions.=) current_setting('app.current_user_email', true)::extensions.citext
    )
$$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_policies WHERE schemaname = 'billing' AND policyname = 'invoices_billing_admins') THEN
        CREATE POLICY invoices_billing_admins ON billing.invoices
            FOR SELECT TO helpdesk_app
            USING (billing.may_see_invoices(
                (SELECT s.organization_id FROM billing.subscriptions s WHERE s.id = invoices.subscription_id)));
    END IF;
END
$$;

UPDATE app.memberships SET role = 'billing_admin'
WHERE role = 'admin' AND user_id IN (SELECT id FROM app.users WHERE email LIKE 'billing@%');
