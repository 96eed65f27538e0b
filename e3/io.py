"""Atomic file output, run folders and hashing: an output is either complete or absent, never
half written, and nothing a run did not create is ever deleted."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from e3.errors import E3Error


def _umask() -> int:
    # os.umask can only be read by setting it; restore at once (e3 writes from one thread).
    old = os.umask(0)
    os.umask(old)
    return old


def public_mode(directory: bool = False) -> int:
    """Permission bits an ordinary ``open()``/``mkdir()`` would give: 0o666 (files) or 0o777
    (folders) minus the process umask, i.e. 0644/0755 under the usual umask 022. ``mkstemp`` and
    ``mkdtemp`` create 0600/0700, which would make committed results private."""
    return (0o777 if directory else 0o666) & ~_umask()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    If the body raises, the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, public_mode())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _dumps(path: str | Path, obj: Any, **kw) -> str:
    try:
        return json.dumps(obj, sort_keys=True, allow_nan=False, **kw)
    except ValueError as exc:  # NaN or infinity: not JSON, and never a valid e3 value
        raise E3Error(f"{path}: refusing to write a non-finite number (NaN or infinity): {exc}") from None


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically.

    Raises:
        E3Error: ``obj`` holds NaN or an infinity (strict JSON has neither); nothing is written.
    """
    write_text_atomic(path, _dumps(path, obj, indent=2) + "\n")


def write_jsonl_atomic(path: str | Path, records: list[dict[str, Any]]) -> None:
    """Write one key-sorted JSON object per line to ``path`` atomically.

    Raises:
        E3Error: a record holds NaN or an infinity; nothing is written.
    """
    lines = "".join(_dumps(path, r) + "\n" for r in records)
    write_text_atomic(path, lines)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file. Raises :class:`e3.errors.InputError` on a bad line."""
    from e3.errors import InputError

    def no_constant(name: str) -> Any:  # json accepts NaN/Infinity by default; e3 never does
        raise ValueError(name)

    out = []
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line, parse_constant=no_constant))
            except json.JSONDecodeError as exc:
                raise InputError(path, f"line {i}", f"not valid JSON: {exc.msg}") from exc
            except ValueError as exc:
                raise InputError(path, f"line {i}", "non-finite number (NaN and infinities are rejected)",
                                 str(exc)) from None
    return out


def sha256_hex(data: bytes | str) -> str:
    """Hex SHA-256 of ``data`` (a str is hashed as its UTF-8 bytes). The one SHA-256 helper of e3:
    seeds, config and scenario hashes, LLM cache keys and file digests all go through it or
    :func:`sha256_file`."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB chunks, so memory stays flat)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


#: Files an ``e3 simulate`` run folder holds (Snakemake may already have deleted some of them).
SIM_RUN_FILES = frozenset({"summary.json", "timing.json", "tasks.parquet", "tasks.csv", "audit.jsonl"})


def check_run_dir(out_dir: str | Path, run_files: Iterable[str] = SIM_RUN_FILES) -> Path:
    """Check that ``out_dir`` may receive a run's outputs; return it as a Path.

    Allowed: a path that does not exist yet, an empty folder, or a previous run of the same kind
    (a folder holding nothing but files named in ``run_files``), which the new run replaces.

    Raises:
        E3Error: ``out_dir`` is ``.``, the working folder or one of its parents, a file, or a
            non-empty folder that is not a previous run (listing what it holds); nothing is touched.
    """
    out = Path(out_dir)
    allowed = set(run_files)
    resolved = out.resolve()
    if out.name in ("", ".", "..") or resolved == Path.cwd().resolve() or resolved in Path.cwd().resolve().parents:
        raise E3Error(f"--out {str(out_dir)!r}: name a new folder for the run (e.g. runs/demo), "
                      "not the working folder or one of its parents")
    if out.exists() and not out.is_dir():
        raise E3Error(f"--out {str(out_dir)!r}: is a file, not a folder; name a new folder for the run")
    if out.is_dir():
        held = sorted(p.name for p in out.iterdir())
        foreign = [n for n in held if n not in allowed or not (out / n).is_file()]
        if foreign:
            shown = ", ".join(foreign[:8]) + (" ..." if len(foreign) > 8 else "")
            raise E3Error(f"--out {str(out_dir)!r}: folder is not empty and is not a previous run "
                          f"(it holds {shown}); e3 replaces only a folder holding nothing but "
                          f"{sorted(allowed)}. Name a new folder")
    return out


def prepare_run_dir(out_dir: str | Path, run_files: Iterable[str] = SIM_RUN_FILES) -> Path:
    """Check ``out_dir`` (:func:`check_run_dir`) and create a private staging folder beside it.

    The staging folder (``.NAME.XXXXXX.partial``, made by ``tempfile.mkdtemp``) is unique to the
    call, so concurrent runs aimed at the same ``out_dir`` never share one.

    Returns:
        The staging folder; fill it, then :func:`publish_run_dir` (or :func:`discard_run_dir`).

    Raises:
        E3Error: see :func:`check_run_dir`.
    """
    out = check_run_dir(out_dir, run_files)
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))


def publish_run_dir(staging: str | Path, out_dir: str | Path, run_files: Iterable[str] = SIM_RUN_FILES) -> Path:
    """Move a filled staging folder onto ``out_dir``, replacing a previous run of the same kind.

    The previous run is renamed aside first and only its ``run_files`` are then deleted, so a
    reader sees the old run or the new one, and a file e3 did not write is never deleted.

    Raises:
        E3Error: ``out_dir`` changed meanwhile into something :func:`check_run_dir` refuses, or
            another run published into it at the same moment.
    """
    staging, out = Path(staging), check_run_dir(out_dir, run_files)
    os.chmod(staging, public_mode(directory=True))  # mkdtemp made it 0700
    old = None
    try:
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, old)  # onto the empty folder mkdtemp made
        os.replace(staging, out)
    except OSError as exc:  # another run published into out_dir at the same moment
        if old is not None and not out.exists():
            os.replace(old, out)  # put the previous run back
        elif old is not None:
            with contextlib.suppress(OSError):  # still the empty placeholder
                old.rmdir()
        raise E3Error(f"--out {str(out_dir)!r}: could not publish the run ({exc.strerror}); another "
                      "run wrote the same folder at the same time? Re-run it") from None
    if old is None:
        return out
    for name in set(run_files):
        (old / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not empty only if someone wrote into it meanwhile: keep it
        old.rmdir()
    return out


def discard_run_dir(staging: str | Path) -> None:
    """Remove a staging folder made by :func:`prepare_run_dir` (after a failed run)."""
    shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def staged_run_dir(out_dir: str | Path, run_files: Iterable[str] = SIM_RUN_FILES) -> Iterator[Path]:
    """Yield a private staging folder for a run aimed at ``out_dir``; publish it on success,
    remove it on failure (``out_dir`` is then untouched).

    Raises:
        E3Error: ``out_dir`` may not receive a run (see :func:`check_run_dir`).
    """
    with run_dir_lock(out_dir):
        staging = prepare_run_dir(out_dir, run_files)
        try:
            yield staging
            publish_run_dir(staging, out_dir, run_files)
        finally:
            discard_run_dir(staging)


@contextlib.contextmanager
def run_dir_lock(out_dir: str | Path) -> Iterator[None]:
    """Hold an exclusive advisory lock (``fcntl.flock``) on ``.NAME.lock`` beside ``out_dir`` for
    the whole run, so a second run aimed at the same folder at the same time fails at once instead
    of both exiting 0 with one run silently lost (issue 33, defect 12). The lock file is removed
    on release.

    Raises:
        E3Error: another process holds the lock.
    """
    import fcntl

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    lock = out.parent / f".{out.name}.lock"
    fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise E3Error(f"--out {str(out_dir)!r}: another e3 run is writing this folder now (lock {lock}); "
                          "wait for it, or give another --out") from None
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)
    finally:
        os.close(fd)


def check_batch(out_pattern: str, seeds: list[int]) -> None:
    """Arguments of a batch of seeds (``e3 simulate --seeds``), for every system's batch runner.

    Raises:
        E3Error: ``out_pattern`` lacks the ``{seed}`` placeholder, or a seed is listed twice.
    """
    if "{seed}" not in out_pattern:
        raise E3Error(f"--out {out_pattern!r}: a batch of seeds needs a '{{seed}}' placeholder in the output folder")
    if len(set(seeds)) != len(seeds):
        raise E3Error(f"--seeds {seeds}: a seed is listed twice")
