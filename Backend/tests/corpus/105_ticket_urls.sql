-- Overloads: the number alone, or the number and the organization's own domain.
CREATE OR REPLACE FUNCTION app.ticket_url(ticket_number bigint) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN 'https://help.example.com/t/' || ticket_number;

CREATE OR REPLACE FUNCTION app.ticket_url(ticket_number bigint, domain text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN format('https://%s/t/%s', domain, ticket_number);

CREATE OR REPLACE FUNCTION app.ticket_url(ticket_number bigint, domain text, locale text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
AS $body$
BEGIN
    -- Nested quoting on purpose: the body builds SQL that holds a dollar-quoted string itself.
    RETURN app.ticket_url(ticket_number, domain) || '?lang=' || coalesce(nullif(locale, ''), $lang$en$lang$);
END;
$body$;
