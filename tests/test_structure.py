"""Package structure: the folder tree is the layer diagram. Layers import downwards only, no module imports one that
imports it back, the installed package never imports the benchmarks, and library modules stay small."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "multistyle"
# what a layer may never import (directly, anywhere in the module, module level or inside functions)
FORBIDDEN = {
    "nets": ("video", "apps", "cli", "benchmarks", "train", "loss", "stylizer"),
    "loss": ("video", "apps", "cli", "benchmarks", "train", "stylizer"),
    "stylizer": ("video", "apps", "cli", "benchmarks", "train"),
    "modelfile": ("video", "apps", "cli", "benchmarks", "train", "stylizer"),
    "engine": ("video", "apps", "cli", "benchmarks", "train", "stylizer", "loss"),
    "train": ("video", "apps", "cli", "benchmarks"),
    "video": ("apps", "cli", "benchmarks", "train"),
    "apps": ("cli", "benchmarks"),
    "": ("benchmarks",),  # the whole installed package
}
MAX_MODULE_LINES = 300
# the folders whose modules the size limit covers: the library, the scripts and the benchmarks
SIZED_FOLDERS = ("multistyle", "apps", "train", "benchmarks")


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Absolute dotted names of the multistyle/benchmarks modules ``path`` imports (anywhere in the file)."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith(("multistyle", "benchmarks")):
                continue
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)  # `from . import x` imports a module x
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(("multistyle", "benchmarks")))
    return found


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    graph = {}
    for name, path in modules.items():
        deps = set()
        for target in imports_of(path):
            while target and target not in modules:  # `from .loss import X`: the package; names resolve to it
                target = target.rpartition(".")[0]
            if target and target != name:
                deps.add(target)
        graph[name] = deps
    return graph


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def violations(graph: dict[str, set[str]]) -> list[str]:
    """``"A imports B"`` for every import that goes up the layers (or out to the benchmarks)."""
    bad = set()
    for module, deps in graph.items():
        for dep in deps:
            target = "benchmarks" if dep.startswith("benchmarks") else layer_of(dep)
            if target != layer_of(module) and any(target in FORBIDDEN.get(layer, ()) for layer in (layer_of(module), "")):
                bad.add(f"{module} imports {dep}")
    return sorted(bad)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, found by depth-first search from each module (packages' own __init__ re-exports count:
    a package importing its submodules is not a cycle with them)."""
    found = []
    for start in graph:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt.startswith(node + ".") or node.startswith(nxt + "."):
                    continue  # a package and its own submodules
                if nxt == start:
                    found.append(path)
                elif nxt not in path and nxt > start:
                    stack.append((nxt, path + [nxt]))
    return found


def test_the_import_graph_is_read():
    graph = import_graph()
    assert "multistyle.loss.perceptual" in graph["multistyle.gatys"] | graph["multistyle.loss"]
    assert "multistyle.cli.common" in graph["multistyle.cli.images"]
    assert "multistyle.nets.cin" in graph["multistyle.nets.v2"]


def test_layers_import_downwards_only():
    assert violations(import_graph()) == []


def test_a_violation_would_be_found():
    graph = {"multistyle.nets.v1": {"multistyle.video.flicker"}, "multistyle.stylizer": {"benchmarks.kit"},
             "multistyle.apps.demo": {"multistyle.stylizer"}}
    assert violations(graph) == ["multistyle.nets.v1 imports multistyle.video.flicker",
                                 "multistyle.stylizer imports benchmarks.kit"]


def test_no_import_cycles():
    graph = import_graph()
    assert cycles(graph) == []
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def test_modules_stay_small():
    paths = [p for folder in SIZED_FOLDERS for p in (ROOT / folder).rglob("*.py")]
    assert len(paths) > 50
    big = {str(p.relative_to(ROOT)): n for p in paths if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert big == {}


def test_a_newcomer_finds_the_main_concerns_by_folder_name():
    for path in ("video/flicker.py", "nets/cin.py", "train/add_style.py", "loss/vgg.py", "apps/demo/__init__.py",
                 "apps/webcam.py", "cli/__init__.py"):
        assert (PACKAGE / path).is_file(), path
