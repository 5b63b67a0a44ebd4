"""Production code uses libraries through their public APIs and the ORM (#15): no private attribute
of Django, DRF, waffle or redis-py, no hand-built SQL. A source scan, so a new one fails here."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = ("vocabulary", "websafety", "config", "flags", "experiments", "training", "console")
# Underscored names that are public by documentation: Django's model `_meta` and `_state`
# (Model instance reference), and namedtuple's `_replace`.
DOCUMENTED = {"_meta", "_state", "_replace"}
# The only raw SQL: creating the embedded server's database before Django can connect, and the
# health check's `SELECT 1` (it asks whether the database answers, not for data).
SQL_ALLOWED = {("config/embedded.py", "execute"), ("console/ops.py", "cursor"),
               ("console/ops.py", "execute")}  # fmt: skip
SQL_CALLS = {"raw", "extra", "cursor", "execute", "executemany"}


def _production_files() -> list[Path]:
    return [
        path
        for package in PRODUCTION
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    ]


def _findings() -> tuple[list[str], list[str]]:
    private, sql = [], []
    for path in _production_files():
        name = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute):
                attr = node.attr
                owner = node.value.id if isinstance(node.value, ast.Name) else ""
                if (
                    attr.startswith("_")
                    and not attr.startswith("__")
                    and owner not in ("self", "cls")
                    and attr not in DOCUMENTED
                ):
                    private.append(f"{name}:{node.lineno} .{attr}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in SQL_CALLS
                and (name, node.func.attr) not in SQL_ALLOWED
            ):
                sql.append(f"{name}:{node.lineno} .{node.func.attr}()")
    return private, sql


def test_no_production_module_reads_another_objects_private_attributes() -> None:
    private, _ = _findings()
    assert private == []


def test_no_production_module_writes_sql_by_hand() -> None:
    _, sql = _findings()
    assert sql == []
