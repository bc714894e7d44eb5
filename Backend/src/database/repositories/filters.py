"""WHERE clauses the search functions share."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement


def contains_text(column: Any, text: str) -> ColumnElement[bool]:
    """`column` contains `text`, case-insensitive, with `%`, `_` and `\\` matched as themselves."""
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    result: ColumnElement[bool] = column.ilike(pattern, escape="\\")
    return result
