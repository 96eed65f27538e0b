"""One batch loop for every system (E3, fairness, placement): run one cell for several seeds in
one process, one output folder per seed (what one Snakemake simulate job does, issue 11)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from e3.io import check_batch


def run_seeds(seeds: list[int], out_pattern: str, load: Callable[[], Any],
              run_one: Callable[[Any, int, Path], dict[str, Any]],
              describe: Callable[[dict[str, Any]], str], progress: Callable[[str], None] | None = None
              ) -> list[dict[str, Any]]:
    """Check the batch, load the cell's inputs once with ``load()``, then run
    ``run_one(inputs, seed, out_dir)`` for each seed in order, with ``out_dir`` the pattern's
    ``{seed}`` filled in, and report one progress line per seed.

    Args:
        seeds: replicate seeds (no repeats).
        out_pattern: output folder with a ``{seed}`` placeholder, e.g. ``runs/semantic/e3/rules/seed{seed}``.
        load: loads what every seed of the cell shares (config, priors, pool, scenario); called
            once, after the batch check, so a bad pattern fails before any loading.
        run_one: runs one seed into its folder from the loaded inputs and returns its summary dict.
        describe: the system's one-line result of a summary (e.g. its mean latency), for progress.
        progress: where progress lines go (``[i/n] seed S: ...``); None: silent.

    Returns:
        One summary per seed, in order.

    Raises:
        E3Error: ``out_pattern`` lacks ``{seed}``, or a seed repeats (:func:`e3.io.check_batch`);
            and whatever ``load`` or ``run_one`` raises.
    """
    check_batch(out_pattern, seeds)
    inputs = load()
    out = []
    for i, seed in enumerate(seeds, 1):
        summary = run_one(inputs, seed, Path(out_pattern.replace("{seed}", str(seed))))
        if progress:
            progress(f"[{i}/{len(seeds)}] seed {seed}: {describe(summary)}")
        out.append(summary)
    return out
