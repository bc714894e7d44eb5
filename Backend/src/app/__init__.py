"""The application layer: the `migrate` command line, its renderers, and the health ASGI app.

Everything here calls the layers below (`src.migrate.commands`, `src.database`, `src.postgres`) and adds
only what a user sees: options parsed, results rendered as text or JSON, exit codes.
"""
