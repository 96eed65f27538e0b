"""Release 0.4.0's setting stays a named variant (config/variants/v0.4.yaml): it loads, passes the
sweep checks, and differs from 0.5.0's only in the placement objective's queueing factor, the llm
refinement's prompt that states it, the EAM ablations' random stream and the sweep's cells."""

from __future__ import annotations

import copy

from e3.checks import check_sweep
from e3.config import load_config


def test_the_v04_variant_loads_and_checks(repo):
    v04 = load_config(repo / "config/variants/v0.4.yaml")
    check_sweep(v04, repo, "config/variants/v0.4.yaml")
    now = load_config(repo / "config/config.yaml")
    assert (v04["placement"]["cost"]["queueing"], v04["placement"]["refine"]["prompt"]) == ("mm1", "v3")
    assert (now["placement"]["cost"]["queueing"], now["placement"]["refine"]["prompt"]) == ("mg1", "v4")
    # every other section is the same: 0.5.0 changed only the placement system
    for key in set(v04) | set(now):
        if key != "placement":
            assert v04.get(key) == now.get(key), key
    # the EAM ablations' random stream: 0.4.0 drew each from its own name's (the default when absent)
    assert "ablation_stream" not in v04["placement"] and now["placement"].pop("ablation_stream") == "shared"
    a, b = copy.deepcopy(v04["placement"]), copy.deepcopy(now["placement"])
    for p in (a, b):
        del p["cost"]["queueing"], p["refine"]["prompt"], p["sweep"]["cells"]
    assert a == b
