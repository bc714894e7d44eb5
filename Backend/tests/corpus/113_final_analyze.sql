-- The last file of the corpus: its last statement has no semicolon and the file no final newline.
ANALYZE app.tickets, app.ticket_comments