"""Package structure: no module of multistyle imports one that imports it back (directly or through others)."""

from __future__ import annotations

import ast

from conftest import ROOT

PACKAGE = ROOT / "multistyle"


def imports_of(path) -> set[str]:
    """multistyle modules imported anywhere in ``path`` (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                base = node.module
                names = [base] if base else [a.name for a in node.names]
            elif (node.module or "").startswith("multistyle"):
                rest = (node.module or "").split(".", 1)
                names = [rest[1]] if len(rest) > 1 else [a.name for a in node.names]
            else:
                continue
            found.update(n.split(".")[0] for n in names if n)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("multistyle."))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {p.stem: p for p in PACKAGE.glob("*.py")}
    return {name: imports_of(path) & set(modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, found by depth-first search from each module."""
    found = []
    for start in graph:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    found.append(path)
                elif nxt not in path and nxt > start:  # report each cycle once, from its smallest name
                    stack.append((nxt, path + [nxt]))
    return found


def test_the_import_graph_is_read():
    graph = import_graph()
    assert {"losses", "vgg"} <= graph["gatys"] | graph["losses"]
    assert "cliutil" in graph["commands"] and "benchkit" in graph["bench_inference"]


def test_no_import_cycles():
    graph = import_graph()
    assert all(name not in deps for name, deps in graph.items()), "a module imports itself"
    assert cycles(graph) == []


def test_a_cycle_would_be_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
