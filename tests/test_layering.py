"""The layers of e3 (issue 32, item 1): every import, at module level or inside a function, goes
to the same layer or one below. A new module must be given a layer here.

0. leaves: errors, files, seeds, the registry type, the config loader, the run-summary schema,
   the scenario folders, the mirror lookup, MLPerf's pinned round table, the batch loop;
1. the kernel, ``e3/sim``, with the service-time equations and the trace readers it runs on;
2. inputs: MLPerf parsing and priors, the pool, trace fetching;
3. the systems' models, engines and policies: E3's policies and agents, the LLM client, the
   fairness and placement systems;
4. runs and analyses: assembling E3 runs, every system's tables and studies, LLM recording (a
   simulation runner), the config checks that ask every system's registry;
5. the command line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

E3 = Path(__file__).resolve().parent.parent / "e3"
LAYERS = {
    "e3": 0, "e3.errors": 0, "e3.io": 0, "e3.seeds": 0, "e3.registry": 0, "e3.config": 0, "e3.run_summary": 0,
    "e3.scenario_files": 0, "e3.mirrors": 0, "e3.schemas": 0, "e3.mlperf.rounds": 0, "e3.batch": 0,
    "e3.sim": 1, "e3.service_model": 1, "e3.workload.readers": 1,
    "e3.mlperf": 2, "e3.workload": 2,
    "e3.policies": 3, "e3.agent": 3, "e3.llm": 3, "e3.fairness": 3, "e3.placement": 3,
    "e3.experiment": 4, "e3.analysis": 4, "e3.checks": 4, "e3.llm.record": 4, "e3.systems": 4,
    "e3.fairness.analysis": 4, "e3.fairness.load_sweep": 4, "e3.placement.analysis": 4,
    "e3.placement.migration_sweep": 4, "e3.placement.objective_check": 4,
    "e3.cli": 5,
}


def layer(module: str) -> int:
    """The layer of ``module``: its longest prefix in :data:`LAYERS`."""
    parts = module.split(".")
    for k in range(len(parts), 0, -1):
        if ".".join(parts[:k]) in LAYERS:
            return LAYERS[".".join(parts[:k])]
    raise KeyError(module)


def modules() -> dict[str, Path]:
    out = {}
    for f in sorted(E3.rglob("*.py")):
        name = ".".join(f.relative_to(E3.parent).with_suffix("").parts).removesuffix(".__init__")
        out[name] = f
    return out


def e3_imports(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.startswith("e3")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("e3"):
            out.append(node.module)
    return out


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_imports_a_layer_above_its_own(name):
    here = layer(name)
    up = [m for m in e3_imports(modules()[name]) if layer(m) > here]
    assert not up, f"{name} (layer {here}) imports {[(m, layer(m)) for m in up]}"


def test_the_config_loader_is_a_leaf():
    # every layer loads configs; it must not reach back into the systems (issue 32: 8 upward imports)
    assert set(e3_imports(modules()["e3.config"])) <= {"e3.errors", "e3.io", "e3.mlperf.rounds"}


def test_no_import_circles():
    graph = {m: {t for t in map(_resolve, e3_imports(f)) if t and t != m} for m, f in modules().items()}
    stack, on, low, idx, circles = [], set(), {}, {}, []

    def visit(v):
        idx[v] = low[v] = len(idx)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in idx:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], idx[w])
        if low[v] == idx[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in graph:
        if v not in idx:
            visit(v)
    assert not circles, circles


def _resolve(name: str) -> str | None:
    mods = modules()
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None
