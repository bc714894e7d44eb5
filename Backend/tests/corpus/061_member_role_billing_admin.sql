ALTER TYPE app.member_role ADD VALUE IF NOT EXISTS 'billing_admin' BEFORE 'agent';
