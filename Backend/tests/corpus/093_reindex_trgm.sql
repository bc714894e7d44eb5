-- The trigram index bloated during the 2023 import; rebuild it without blocking writes.
REINDEX INDEX CONCURRENTLY app.tickets_subject_trgm_idx;
