"""Modules loaded at their first use, so that what only pending work needs (the SQL parser's wrapper, the
lock, failure diagnosis, the audit trail) stays out of the start of a `migrate apply` with nothing to do:
the common container start (docs/benchmarks.md, the no-op apply).

    if TYPE_CHECKING:
        from src.migrate import audit
    else:
        audit = lazy.module("src.migrate.audit")

The type checker sees the real import; at run time the module is executed at the first attribute access
(the standard library's importlib.util.LazyLoader).
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def module(name: str) -> ModuleType:
    """The module `name`, executed when one of its attributes is first read (as is, if already imported)."""
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    made = importlib.util.module_from_spec(spec)
    sys.modules[name] = made
    loader.exec_module(made)
    return made
