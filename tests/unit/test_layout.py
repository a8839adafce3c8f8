"""The code's shape holds: ruff is clean, no package file is too long, the package has no import cycle, and later
stages never import earlier stages' internals the wrong way round (docs/architecture.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "workflow" / "scripts" / "dnalm"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every dnalm module a file imports, at the top or inside a function (`from dnalm import x` names dnalm.x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("dnalm")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dnalm"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    """Module → the package's modules it imports (a submodule import also imports its packages)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        targets = set()
        for target in imports(path):
            parts = target.split(".")
            targets |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)} & set(modules)
        edges[name] = targets - {name} - {p for p in targets if name.startswith(p + ".")}
    return edges


def test_ruff_is_clean() -> None:
    ruff = Path(sys.executable).with_name("ruff")
    proc = subprocess.run([str(ruff), "check", "workflow/scripts", "tests", "benchmarks", "docs"], cwd=REPO,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr


def test_no_package_file_over_600_lines_and_common_smk_within_400() -> None:
    long = {str(p.relative_to(REPO)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 600}
    assert not long
    assert len((REPO / "workflow" / "rules" / "common.smk").read_text().splitlines()) <= 400


def test_the_package_has_no_import_cycle(graph) -> None:
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != 1, "import cycle: " + " -> ".join([*path, node, nxt])
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


@pytest.mark.parametrize(("modules", "never"), [
    (["dnalm.evaluate", "dnalm.attribution", "dnalm.interpret", "dnalm.predict", "dnalm.pretrain", "dnalm.tasks"],
     {"dnalm.training"}),
    (["dnalm.report.page", "dnalm.interpret"], {"dnalm.training", "dnalm.predict", "dnalm.models", "dnalm.attribution"}),
    (["dnalm.io", "dnalm.qc", "dnalm.download", "dnalm.config", "dnalm.outputs"],
     {"dnalm.training", "dnalm.predict", "dnalm.models", "dnalm.store", "dnalm.report"}),
    (["dnalm.tasks"], {"dnalm.predict", "dnalm.store", "dnalm.models"}),
])
def test_no_import_runs_back_up_the_stages(graph, modules, never) -> None:
    for module in modules:
        assert not reachable(graph, module) & never, module
