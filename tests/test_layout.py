"""The package's layout: no module imports, however indirectly, one that imports it."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in (ROOT / "flowrun").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _imported(name: str, path: Path, is_package: bool, modules) -> set[str]:
    """Every flowrun module ``name`` imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if is_package else name.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join(package + ([node.module] if node.module else []))
            # ``from package import module`` imports the module; else the names
            # come from ``base`` itself.
            for alias in node.names:
                full = f"{base}.{alias.name}"
                names.add(full if full in modules else base)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n.startswith("flowrun")}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, (path, is_package) in modules.items():
        targets = set()
        for target in _imported(name, path, is_package, modules):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
        graph[name] = targets
    return graph


def test_the_package_has_no_import_cycle():
    try:
        graphlib.TopologicalSorter(import_graph()).prepare()
    except graphlib.CycleError as err:
        raise AssertionError(f"import cycle: {' -> '.join(err.args[1])}") from None


def test_the_graph_sees_a_cycle_when_there_is_one():
    graph = import_graph()
    # The exporters read placeholders; make placeholders read the exporters.
    assert "flowrun.engine.placeholders" in graph["flowrun.exporters.text"]
    graph["flowrun.engine.placeholders"].add("flowrun.exporters.text")
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError:
        return
    raise AssertionError("a cycle added on purpose went unseen")
