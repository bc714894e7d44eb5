"""A comparable snapshot of the user-visible catalog: schemas, tables, columns, constraints, indexes,
triggers, functions and comments, with system schemas left out.

Two snapshots are equal exactly when those definitions are, which is how a migration is shown to be
idempotent: snapshot, run it again, snapshot, compare.
"""

from __future__ import annotations

from typing import Any

import asyncpg

_USER_NAMESPACES = """
    SELECT oid FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND nspname NOT LIKE 'pg_temp_%' AND nspname NOT LIKE 'pg_toast_temp_%'
"""

_QUERIES: dict[str, str] = {
    "schemas": f"""
        SELECT n.nspname AS name, obj_description(n.oid, 'pg_namespace') AS comment
        FROM pg_namespace n WHERE n.oid IN ({_USER_NAMESPACES}) ORDER BY 1""",
    "relations": f"""
        SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,
               obj_description(c.oid, 'pg_class') AS comment,
               -- NULL means the default privileges: read as them, so a GRANT undone by a REVOKE is no change.
               coalesce(c.relacl, pg_catalog.acldefault(
                   (CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::"char", c.relowner))::text AS acl
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relnamespace IN ({_USER_NAMESPACES}) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
        ORDER BY 1, 2""",
    "columns": f"""
        SELECT n.nspname AS schema, c.relname AS table, a.attname AS name,
               format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
               pg_get_expr(d.adbin, d.adrelid) AS default, col_description(c.oid, a.attnum) AS comment
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace IN ({_USER_NAMESPACES}) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY 1, 2, a.attnum""",
    "constraints": f"""
        SELECT n.nspname AS schema, c.relname AS table, k.conname AS name, k.contype::text AS type,
               pg_get_constraintdef(k.oid) AS definition
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE k.connamespace IN ({_USER_NAMESPACES})
        ORDER BY 1, 2, 3""",
    "indexes": f"""
        SELECT n.nspname AS schema, c.relname AS name, pg_get_indexdef(i.indexrelid) AS definition,
               i.indisvalid AS valid
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relnamespace IN ({_USER_NAMESPACES})
        ORDER BY 1, 2""",
    "triggers": f"""
        SELECT n.nspname AS schema, c.relname AS table, t.tgname AS name, pg_get_triggerdef(t.oid) AS definition
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT t.tgisinternal AND c.relnamespace IN ({_USER_NAMESPACES})
        ORDER BY 1, 2, 3""",
    "functions": f"""
        SELECT n.nspname AS schema, p.proname AS name, pg_get_function_identity_arguments(p.oid) AS arguments,
               md5(p.prosrc) AS body, obj_description(p.oid, 'pg_proc') AS comment
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.pronamespace IN ({_USER_NAMESPACES})
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
        ORDER BY 1, 2, 3""",
}

Snapshot = dict[str, list[dict[str, Any]]]


async def snapshot(conn: asyncpg.Connection) -> Snapshot:
    return {name: [dict(row) for row in await conn.fetch(query)] for name, query in _QUERIES.items()}


def differences(before: Snapshot, after: Snapshot) -> list[str]:
    """Human-readable lines for what changed between two snapshots (empty when they are equal)."""
    lines: list[str] = []
    for section in _QUERIES:
        old = {repr(sorted(r.items())) for r in before.get(section, [])}
        new = {repr(sorted(r.items())) for r in after.get(section, [])}
        lines += [f"{section}: removed {row}" for row in sorted(old - new)]
        lines += [f"{section}: added {row}" for row in sorted(new - old)]
    return lines
