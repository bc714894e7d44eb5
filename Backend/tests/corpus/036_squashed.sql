/*
 * 036: this file held the "ticket_watchers" table in its second attempt; the feature moved to
 * memberships (see 045) and the file was emptied when the two were squashed.
 *
 * Nota bene: ne pas supprimer — le numéro est enregistré dans les bases de production.
 */
-- Nothing to do.
