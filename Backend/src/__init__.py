"""The agent backend's database package, in four layers (docs/architecture.md): `src.app` (the `migrate`
command line and the health app) on `src.migrate` (the runner as a library) and `src.database` (the data
layer), both on `src.postgres` (how to reach PostgreSQL)."""

from pathlib import Path

# Backend/src/__init__.py -> Backend/ -> the repository root. Defaults that point into the checkout
# (the migrations folder, the embedded server's data directory) are resolved from here, not from the
# current directory, so `migrate` behaves the same wherever it is started.
BACKEND_DIR = Path(__file__).resolve().parent.parent
PROJECT_ROOT = BACKEND_DIR.parent
