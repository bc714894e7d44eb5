"""The agent backend's database package: the migration runner (`src.migrate`) and data layer (`src.database`)."""

from pathlib import Path

# Backend/src/__init__.py -> Backend/ -> the repository root. Defaults that point into the checkout
# (the migrations folder, the embedded server's data directory) are resolved from here, not from the
# current directory, so `migrate` behaves the same wherever it is started.
BACKEND_DIR = Path(__file__).resolve().parent.parent
PROJECT_ROOT = BACKEND_DIR.parent
