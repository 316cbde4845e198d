"""The package's dependencies point one way: read from the source, every import counted.

Function-level and ``TYPE_CHECKING`` imports count too: an import hidden in a function is
still a dependency (it is how the error core once reached into monitoring).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "fastapi_error_codes"
NAME = "fastapi_error_codes"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str) -> set[str]:
    """The package's modules that module *name* imports, anywhere in its source."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import sub` imports the submodule `pkg.sub` when there is one
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != name)
    return found


GRAPH = {name: _imports(name) for name in MODULES}


def test_the_error_core_never_imports_monitoring() -> None:
    # The package's own __init__ is the one exception: its module __getattr__ loads the
    # monitoring names on first use (tests/core/test_imports.py checks that importing the
    # package loads no monitoring module).
    core = [m for m in MODULES if not m.startswith(f"{NAME}.metrics") and m != NAME]
    assert core, "no core modules found"
    offenders = {m: sorted(t for t in GRAPH[m] if t.startswith(f"{NAME}.metrics")) for m in core}
    assert {m: t for m, t in offenders.items() if t} == {}


def _cycle_from(start: str) -> list[str] | None:
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in on_path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        on_path.add(node)
        for target in sorted(GRAPH[node]):
            # A package's __init__ re-exports its modules; a module importing its own
            # package's public names is not a cycle of concepts.
            if node.startswith(target + "."):
                continue
            cycle = visit(target)
            if cycle:
                return cycle
        path.pop()
        on_path.discard(node)
        done.add(node)
        return None

    done: set[str] = set()
    return visit(start)


def test_no_import_cycles() -> None:
    cycles = {m: cycle for m in sorted(MODULES) if (cycle := _cycle_from(m))}
    assert cycles == {}


def test_the_collector_knows_no_redis_and_no_http() -> None:
    for part in ("buffer", "wire", "flusher", "collector"):
        imported = _imports(f"{NAME}.metrics.{part}")
        assert not any(m.endswith(("._http", ".auth", ".redis")) for m in imported), part
        source = MODULES[f"{NAME}.metrics.{part}"].read_text(encoding="utf-8")
        assert "import redis" not in source and "from redis" not in source, part
