"""Obtain the raw MLPerf files e3 needs: copy them from a local mirror, or download them.

Layout of the destination (and of a mirror) follows the upstream repositories:
``{dest}/inference_results_{round}/{path in repo}``. A ``FETCH_MANIFEST.json`` records where each
file came from and its sha256. The destination is built in a staging folder and renamed into
place at the end, so a failed fetch leaves no partial tree behind.
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from pathlib import Path

from e3.errors import E3Error
from e3.io import sha256_file, write_json_atomic
from e3.mlperf.priors import round_rows
from e3.mlperf.rounds import Round, get_round

OFFLINE_HINT = ("No network? Point e3 at a local mirror of the MLPerf results instead: "
                "`snakemake refresh_priors --config mlperf_mirror=PATH` (or set "
                "`mlperf: {mirror: PATH}` in config/config.yaml, or E3_MLPERF_MIRROR=PATH); "
                "PATH holds inference_results_v*/ folders, e.g. ../shared/mlperf.")


class FetchError(E3Error):
    """A file could not be copied or downloaded."""


def _get(rnd: Round, rel: str, dest_root: Path, mirror: Path | None, required: bool,
         manifest: list[dict], timeout_s: float) -> Path | None:
    dest = dest_root / rnd.folder / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    if mirror is not None:
        src = mirror / rnd.folder / rel
        if not src.is_file():
            if required:
                raise FetchError(f"mirror {mirror} lacks required file {rnd.folder}/{rel}")
            return None
        shutil.copyfile(src, dest)
        origin = str(src)
    else:
        url = rnd.raw_url(rel)
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 (pinned https URL)
                dest.write_bytes(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and not required:
                return None
            raise FetchError(f"download of {url} failed: HTTP {exc.code}. {OFFLINE_HINT}") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise FetchError(f"download of {url} failed: {exc}. {OFFLINE_HINT}") from exc
        origin = url
    manifest.append({"round": rnd.name, "path": rel, "origin": origin, "commit": rnd.ref,
                     "sha256": sha256_file(dest)})
    return dest


def fetch(dest: str | Path, rounds: list[str], benchmarks: list[str], mirror: str | Path | None = None,
          timeout_s: float = 60.0, progress=print) -> list[dict]:
    """Fetch summaries and per-result logs for ``rounds`` x ``benchmarks`` into ``dest``.

    Args:
        dest: destination folder (replaced as a whole on success).
        rounds: round names (see :data:`e3.mlperf.rounds.ROUNDS`).
        benchmarks: MLPerf benchmark names.
        mirror: local folder with the upstream layout; None downloads from the pinned commits.
        timeout_s: per-download timeout in seconds.
        progress: callable for progress lines.

    Returns:
        The manifest entries (also written to ``dest/FETCH_MANIFEST.json``).

    Raises:
        FetchError: a required file is missing from the mirror or cannot be downloaded
            (the message says how to use a mirror when offline).
    """
    dest = Path(dest)
    mirror = Path(mirror) if mirror else None
    if mirror is not None and not mirror.is_dir():
        raise FetchError(f"MLPerf mirror folder {mirror} does not exist. {OFFLINE_HINT}")
    staging = dest.with_name(dest.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    manifest: list[dict] = []
    try:
        for name in rounds:
            rnd = get_round(name)
            if rnd.summary_file:
                got = _get(rnd, rnd.summary_file, staging, mirror, required=False, manifest=manifest, timeout_s=timeout_s)
                if got is None and mirror is not None and rnd.mirror_summary_fallback:
                    _get(rnd, rnd.mirror_summary_fallback, staging, mirror, required=True, manifest=manifest, timeout_s=timeout_s)
                elif got is None:
                    raise FetchError(f"summary {rnd.summary_file} of round {rnd.name} not found at {mirror or rnd.repo}")
            else:
                for r in rnd.explicit_results:
                    if r.benchmark in benchmarks:
                        _get(rnd, f"{r.division}/{r.submitter}/systems/{r.platform}.json", staging, mirror,
                             required=True, manifest=manifest, timeout_s=timeout_s)
            rows, _, _ = round_rows(staging, rnd, benchmarks)
            for row in rows:
                _get(rnd, f"{row.location}/mlperf_log_summary.txt", staging, mirror, True, manifest, timeout_s)
                _get(rnd, f"{row.location}/mlperf_log_detail.txt", staging, mirror, False, manifest, timeout_s)
            progress(f"fetched {rnd.name}: summary + logs of {len(rows)} result(s)")
        write_json_atomic(staging / "FETCH_MANIFEST.json", manifest)
        shutil.rmtree(dest, ignore_errors=True)
        staging.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def mirror_digest(mirror: str | Path | None, rounds: list[str]) -> str:
    """sha256 over the relative paths and contents of every file of ``rounds`` in ``mirror``.

    The Snakemake rule ``fetch_mlperf`` takes it as a parameter, so editing a file in the mirror
    re-runs the refresh (an output folder with no input files would otherwise never be stale).
    Returns ``""`` without a mirror (the pinned upstream commits never change).

    Raises:
        E3Error: ``mirror`` is set but is not a folder.
    """
    if not mirror:
        return ""
    root = Path(mirror)
    if not root.is_dir():
        raise E3Error(f"MLPerf mirror {str(mirror)!r}: not a folder. {OFFLINE_HINT}")
    import hashlib

    h = hashlib.sha256()
    for name in sorted(set(rounds)):
        folder = root / get_round(name).folder
        for p in sorted(x for x in folder.rglob("*") if x.is_file()) if folder.is_dir() else []:
            h.update(f"{p.relative_to(root).as_posix()}\0{sha256_file(p)}\n".encode())
    return h.hexdigest()
