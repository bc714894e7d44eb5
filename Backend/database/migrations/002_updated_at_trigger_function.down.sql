-- Undoes 002_updated_at_trigger_function.sql. Without CASCADE: a trigger still using it (a table not
-- rolled back) stops the rollback.
DROP FUNCTION IF EXISTS public.set_updated_at();
