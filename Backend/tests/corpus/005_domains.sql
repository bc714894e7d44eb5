-- CREATE DOMAIN has no IF NOT EXISTS: look in the catalog first.
DO $$
BEGIN
    IF to_regtype('app.email') IS NULL THEN
        CREATE DOMAIN app.email AS extensions.citext
            CONSTRAINT email_shape CHECK (VALUE OPERATOR(extensions.~) '^[^@\s]+@[^@\s]+\.[^@\s]+$');
    END IF;
    IF to_regtype('app.slug') IS NULL THEN
        CREATE DOMAIN app.slug AS text
            CONSTRAINT slug_shape CHECK (VALUE ~ E'^[a-z0-9]+(-[a-z0-9]+)*$' AND char_length(VALUE) <= 63);
    END IF;
    IF to_regtype('app.money_amount') IS NULL THEN
        CREATE DOMAIN app.money_amount AS numeric(14, 2) DEFAULT 0 NOT NULL
            CONSTRAINT money_amount_not_negative CHECK (VALUE >= 0);
    END IF;
END
$$;

COMMENT ON DOMAIN app.email IS 'An e-mail address, compared without regard to case.';
COMMENT ON DOMAIN app.slug IS 'Lower-case words joined by hyphens, as used in URLs.';
