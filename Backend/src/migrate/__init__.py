"""Raw-SQL migration runner: files, ledger, lock, plan and apply. Knows nothing of the domain."""
