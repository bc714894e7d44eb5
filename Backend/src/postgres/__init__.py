"""The base layer: how to reach PostgreSQL, for everything above it.

`settings` reads where the server is (keyword arguments, `DATABASE_URL`, `DB_*`, `.env`) into
`ConnectionSettings`; `explain` turns a failure to connect into one line naming the setting to fix;
`embedded` runs a PostgreSQL of the project's own when none is configured. Nothing here imports another
package of ours, and nothing here imports SQLAlchemy or pydantic: the runner reads it at every start.
"""
