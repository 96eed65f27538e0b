"""The kernel stays a kernel (issue 11): no module of e3/sim imports the policies, the agents, the
LLM client, the MLPerf layer, the experiment layer, the analysis or the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ABOVE = ("e3.policies", "e3.agent", "e3.llm", "e3.mlperf", "e3.experiment", "e3.analysis", "e3.cli",
         "e3.fairness", "e3.placement")
SIM = sorted((Path(__file__).resolve().parent.parent / "e3" / "sim").glob("*.py"))


def _imports(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return out


@pytest.mark.parametrize("path", SIM, ids=lambda p: p.name)
def test_kernel_module_imports_nothing_above_it(path):
    bad = [m for m in _imports(path) if m.startswith(ABOVE)]
    assert not bad, f"{path.name} imports {bad}"
