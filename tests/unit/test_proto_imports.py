"""The protocol core is sans-IO: nothing in ftpd.proto may import asyncio, socket, ssl or aiofiles,
directly or through another ftpd module (ftpd.fs.base in particular). Checked twice: by importing
every module in a fresh interpreter where those names are blocked, and by walking the imports in
the source with ast (inside proto modules, imports in functions count too)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import ftpd

FORBIDDEN = ("asyncio", "socket", "ssl", "aiofiles", "selectors", "uvloop")
PKG_ROOT = Path(ftpd.__file__).resolve().parent
PROTO_MODULES = sorted(
    ".".join(("ftpd", *p.relative_to(PKG_ROOT).with_suffix("").parts)).removesuffix(".__init__")
    for p in (PKG_ROOT / "proto").rglob("*.py")
)


@pytest.mark.parametrize("module", PROTO_MODULES)
def test_import_with_io_modules_blocked(module: str) -> None:
    code = (
        "import sys\n"
        f"for name in {FORBIDDEN!r}:\n"
        "    sys.modules[name] = None  # any import of it raises ImportError\n"
        f"import {module}\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{FORBIDDEN!r} and sys.modules[m] is not None)\n"
        "assert not leaked, leaked\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PKG_ROOT.parent,
    )
    assert proc.returncode == 0, proc.stderr


def test_fresh_import_loads_no_io_modules() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in PROTO_MODULES)
        + f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PKG_ROOT.parent,
        check=True,
    )
    assert proc.stdout.strip() == "[]"


def _module_file(name: str) -> Path | None:
    rel = Path(*name.split("."))
    for cand in (PKG_ROOT.parent / rel.with_suffix(".py"), PKG_ROOT.parent / rel / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _is_type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(
    body: list[ast.stmt], deep: bool, typing: bool = False
) -> list[ast.Import | ast.ImportFrom]:
    """Import statements that run: ``if TYPE_CHECKING`` blocks skipped unless ``typing``; function
    and class bodies only when ``deep`` (a lazy import in a proto module still counts; one in
    ``ftpd.fs``'s lazy ``__getattr__`` is never reached by the core)."""
    out: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
        elif isinstance(node, ast.If) and _is_type_checking(node):
            out += _import_nodes(node.body if typing else node.orelse, deep, typing)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if deep:
                out += _import_nodes(node.body, deep, typing)
        else:
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                sub = getattr(node, field, None)
                if isinstance(sub, list):
                    out += _import_nodes([n for n in sub if isinstance(n, ast.AST)], deep, typing)
            if isinstance(node, ast.ExceptHandler | ast.match_case):
                out += _import_nodes(node.body, deep, typing)
    return out


def _imports(path: Path, modname: str, deep: bool, typing: bool = False) -> set[str]:
    """Absolute names of the modules the file imports when it runs (or, with ``typing``, when a
    type checker reads it)."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    package = modname if is_pkg else modname.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(tree.body, deep, typing):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        if node.level:
            base = package.split(".")
            prefix = ".".join(base[: len(base) - (node.level - 1)])
            mod = f"{prefix}.{node.module}" if node.module else prefix
        else:
            mod = node.module or ""
        found.add(mod)
        for alias in node.names:  # "from . import x" may name a submodule
            found.add(f"{mod}.{alias.name}")
    return found


def test_ast_transitive_imports() -> None:
    seen: dict[str, str] = {}
    todo = [(m, "") for m in PROTO_MODULES]
    bad: list[str] = []
    while todo:
        name, via = todo.pop()
        if name in seen:
            continue
        seen[name] = via
        path = _module_file(name)
        if path is None:
            continue
        # Importing a module runs its parent packages' __init__ first.
        parts = name.split(".")
        todo += [(".".join(parts[:i]), name) for i in range(1, len(parts))]
        for imp in _imports(path, name, deep=name.startswith("ftpd.proto")):
            top = imp.split(".")[0]
            if top in FORBIDDEN:
                bad.append(f"{name} imports {imp} (reached via {via or 'itself'})")
            elif top == "ftpd" and _module_file(imp) is not None:
                todo.append((imp, name))
    assert bad == []
    assert {"ftpd.fs.base", "ftpd.fs"} <= set(seen)  # the walk reached the filesystem interface


def _proto_graph() -> dict[str, set[str]]:
    """Which proto module imports which, counting imports in functions and under TYPE_CHECKING."""
    graph: dict[str, set[str]] = {}
    for name in PROTO_MODULES:
        path = _module_file(name)
        assert path is not None, name
        graph[name] = {
            imp
            for imp in _imports(path, name, deep=True, typing=True)
            if imp in PROTO_MODULES and imp != name
        }
    return graph


def test_no_import_cycle_inside_proto() -> None:
    graph = _proto_graph()
    # The graph is as read: handler modules are imported by commands, never the other way.
    assert "ftpd.proto.handlers.files" in graph["ftpd.proto.commands"]
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> None:
        if node in done:
            return
        assert node not in path, "import cycle: " + " -> ".join([*path[path.index(node) :], node])
        path.append(node)
        for nxt in sorted(graph[node]):
            visit(nxt)
        path.pop()
        done.add(node)

    for name in sorted(graph):
        visit(name)
    assert done == set(graph)


def test_no_proto_module_over_600_lines() -> None:
    for name in PROTO_MODULES:
        path = _module_file(name)
        assert path is not None
        assert len(path.read_text().splitlines()) <= 600, name
