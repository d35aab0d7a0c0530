"""The package's shape: one import name, dependencies pointing one way,
small modules, imports at the top.

Layers, highest first (a module may import its own sub-package and any lower
layer, never a higher one, never a peer)::

    cli > web > demo > pipeline > {claims, labels, fetch, audit, witness} > ledger > util

``audit`` (the regulators' tools) and ``witness`` (a C2SP tlog-witness) stand
beside claims, labels and fetch: they need the ledger and nothing of the server.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Repository folder -> import name (pyproject.toml's package-dir).
ROOTS = {REPO / "server": "labelcheck", REPO / "ledger": "labelcheck.ledger"}
RANK = {"util": 0, "ledger": 1, "claims": 2, "labels": 2, "fetch": 2, "audit": 2, "witness": 2,
        "pipeline": 3, "demo": 4, "web": 5, "cli": 6}
OPTIONAL = {"c2pa", "cryptography", "pdqhash", "psycopg", "psycopg_pool", "atheris"}
MAX_LINES = 420  # "about 400"


def modules() -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    found = {}
    for folder, base in ROOTS.items():
        for path in sorted(folder.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            found[".".join([base, *parts])] = path
    return found


MODULES = modules()


def layer(module: str) -> str | None:
    """The sub-package a module belongs to (None for the top-level package)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def imports_of(module: str) -> list[tuple[str, int, bool]]:
    """(imported labelcheck module, line, at module top level) for each import."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    top = {id(node) for node in _top_level(tree)}
    package = module if is_package(module) else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for name in names:
            out.append((name, node.lineno, id(node) in top))
    return out


def _top_level(tree: ast.Module):
    """Statements at module level, including inside module-level if/try
    (``if TYPE_CHECKING:``, optional-import fallbacks)."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.If, ast.Try)):
            stack.extend(node.body + node.orelse + getattr(node, "finalbody", []))
            for handler in getattr(node, "handlers", []):
                stack.extend(handler.body)


def own(name: str) -> str | None:
    """The labelcheck module an import names, or None for other packages."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def test_every_folder_is_a_mapped_package():
    for folder, base in ROOTS.items():
        for sub in folder.rglob("*.py"):
            assert (sub.parent / "__init__.py").exists(), f"{sub.parent} has modules but no __init__.py"
    pyproject = (REPO / "pyproject.toml").read_text()
    for module, path in MODULES.items():
        if path.name == "__init__.py":
            assert f'"{module}"' in pyproject, f"{module} is not listed in pyproject.toml's packages"


def test_imports_point_down_the_layers():
    wrong = []
    for module in MODULES:
        mine = layer(module)
        for name, line, _ in imports_of(module):
            target = own(name)
            if target is None or target == "labelcheck":
                continue
            theirs = layer(target)
            if mine is None:
                wrong.append(f"{module}:{line} the top-level package imports {target}")
            elif theirs != mine and RANK[theirs] >= RANK[mine]:
                how = "a peer" if RANK[theirs] == RANK[mine] else "upward"
                wrong.append(f"{module}:{line} imports {target} ({how}: {mine} -> {theirs})")
    assert not wrong, "imports against the layer rule:\n" + "\n".join(wrong)


def test_no_import_cycles():
    graph = {m: sorted({own(n) for n, _, _ in imports_of(m)} - {None, m}) for m in MODULES}
    cycles = [scc for scc in strongly_connected(graph) if len(scc) > 1]
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(sorted(c)) for c in cycles)


def strongly_connected(graph: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative."""
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, []))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                scc = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    scc.append(member)
                    if member == node:
                        break
                out.append(scc)
    return out


def test_strongly_connected_finds_a_cycle():
    # The checker itself: a planted cycle is found, a chain is not.
    sccs = strongly_connected({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]})
    assert sorted(map(sorted, sccs)) == [["a", "b", "c"], ["d"]]


def test_imports_at_the_top_of_modules():
    inside = []
    for module in MODULES:
        for name, line, at_top in imports_of(module):
            if not at_top and name.split(".")[0] not in OPTIONAL:
                inside.append(f"{module}:{line} imports {name} inside a function or class")
    assert not inside, "\n".join(inside)


def test_modules_are_small():
    big = {m: n for m, p in MODULES.items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def test_the_ledger_has_no_flask():
    for module in MODULES:
        if layer(module) in ("ledger", "util", "pipeline", "claims", "labels", "fetch", "audit"):
            for name, line, _ in imports_of(module):
                assert name.split(".")[0] not in ("flask", "werkzeug", "flask_cors"), \
                    f"{module}:{line} imports {name}: only web and demo speak HTTP"


@pytest.mark.slow
def test_the_wheel_holds_only_labelcheck(tmp_path):
    """``pip wheel .`` installs one top-level name: labelcheck. Built from a
    copy of the tracked and new files, so a stale build/ cannot leak in."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True).stdout.decode().split("\0")
    src = tmp_path / "src"
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("labelcheck-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"labelcheck", next(t for t in tops if t.endswith(".dist-info"))}, tops
    packaged = {n[:-3].replace("/", ".").removesuffix(".__init__") for n in names if n.endswith(".py")}
    assert packaged == set(MODULES), set(MODULES) ^ packaged
    with zipfile.ZipFile(wheel) as zf:
        points = zf.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "labelcheck = labelcheck.cli:main" in points
