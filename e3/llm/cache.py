"""Replayable LLM responses: our own canonical cache key, a diskcache store, a JSONL export.

The key is the SHA-256 of the canonical JSON (sorted keys, no whitespace) of everything that can
change a reply: model, api_base, messages, tools, temperature, seed, max_tokens, response format,
the prompt-template version and the model's identity (config ``controllers.llm.model_info``:
weights file, its sha256, server), so a reply recorded from other weights served under the same
name is a miss, not a hit. litellm's built-in cache key is not used: it depends on keyword
order and omits ``api_base``. Secrets (API keys, headers) are never part of a request record, so
they cannot reach the key, the store or the export.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import diskcache

from e3.errors import InputError
from e3.io import read_jsonl, sha256_hex, write_jsonl_atomic

#: Request fields that enter the key. Anything else (api_key, headers, timeout) must not.
KEY_FIELDS = ("model", "api_base", "messages", "tools", "temperature", "seed", "max_tokens",
              "response_format", "prompt_version", "model_info")
#: Field names that must never be stored (checked on every write).
SECRET_FIELDS = ("api_key", "headers", "extra_headers", "authorization")


def canonical_request(request: dict[str, Any]) -> dict[str, Any]:
    """The keyed part of ``request`` (fields of :data:`KEY_FIELDS`, missing ones as None).

    Raises:
        ValueError: a secret field is present (a programming error: secrets stay out of requests).
    """
    bad = [k for k in request if k.lower() in SECRET_FIELDS]
    if bad:
        raise ValueError(f"secret field(s) {bad} must not be part of an LLM request record")
    return {k: request.get(k) for k in KEY_FIELDS}


def cache_key(request: dict[str, Any]) -> str:
    """SHA-256 hex digest of the canonical JSON of ``request`` (see :func:`canonical_request`)."""
    blob = json.dumps(canonical_request(request), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return sha256_hex(blob)


class ResponseCache:
    """A diskcache store of ``key -> {"request": ..., "response": ..., "meta": ...}`` entries.

    Args:
        directory: the diskcache folder (created if missing; safe for concurrent processes).
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._cache = diskcache.Cache(str(self.directory))

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored entry for ``key``, or None."""
        return self._cache.get(key)

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Store ``entry`` (must hold ``request`` and ``response``) under ``key``."""
        _assert_no_secret(entry)
        self._cache.set(key, entry)

    def __contains__(self, key: str) -> bool:
        return key in self._cache

    def __len__(self) -> int:
        return len(self._cache)

    def items(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(key, entry) pairs in key order."""
        for k in sorted(self._cache.iterkeys()):
            yield k, self._cache[k]

    def export_jsonl(self, path: str | Path) -> int:
        """Write every entry, sorted by key, as one JSON object per line (atomically). Returns the count."""
        rows = [{"key": k, **e} for k, e in self.items()]
        write_jsonl_atomic(path, rows)
        return len(rows)

    def import_jsonl(self, path: str | Path) -> int:
        """Load entries from an export. The export is the authority: an entry already present that
        differs from the export's is replaced. Returns how many entries were added or replaced.

        Raises:
            InputError: see :func:`read_export`.
        """
        changed = 0
        for key, entry in read_export(path).items():
            if self._cache.get(key) != entry:
                self.put(key, entry)
                changed += 1
        return changed

    def close(self) -> None:
        """Close the underlying store."""
        self._cache.close()


def read_export(path: str | Path) -> dict[str, dict[str, Any]]:
    """The entries of a JSONL export (``results/llm/responses.jsonl``): key -> entry (the row
    without its ``key``), every key checked against the hash of its request.

    Raises:
        InputError: a line without ``key``/``request``/``response``, a key that does not match the
            canonical hash of its request (a hand-edited or corrupt export, or one recorded before
            the key included ``model_info``), or a key listed twice.
    """
    out: dict[str, dict[str, Any]] = {}
    for i, row in enumerate(read_jsonl(path)):
        for f in ("key", "request", "response"):
            if f not in row:
                raise InputError(path, f"line {i + 1}.{f}", "missing")
        if cache_key(row["request"]) != row["key"]:
            raise InputError(path, f"line {i + 1}.key", "does not match the hash of its request",
                             row["key"])
        if row["key"] in out:
            raise InputError(path, f"line {i + 1}.key", "listed twice", row["key"])
        out[row["key"]] = {k: v for k, v in row.items() if k != "key"}
    return out


def rekey_with_model_info(path: str | Path) -> int:
    """Migrate an export written before ``model_info`` entered the key: copy each row's
    ``meta.model_info`` (recorded with the reply) into its request and recompute its key; rows are
    rewritten sorted by key, atomically. Nothing is re-recorded. Returns the row count.

    Raises:
        InputError: a row without ``meta.model_info``, or an old key that does not match the hash
            of its request without ``model_info``.
    """
    rows = read_jsonl(path)
    for i, row in enumerate(rows):
        info = (row.get("meta") or {}).get("model_info")
        if not info:
            raise InputError(path, f"line {i + 1}.meta.model_info", "missing: the model's identity is unknown")
        old = {k: v for k, v in row["request"].items() if k != "model_info"}
        legacy = sha256_hex(json.dumps({k: old.get(k) for k in KEY_FIELDS if k != "model_info"}, sort_keys=True,
                                       separators=(",", ":"), ensure_ascii=True))
        if row["key"] not in (legacy, cache_key(row["request"])):
            raise InputError(path, f"line {i + 1}.key", "does not match the hash of its request", row["key"])
        row["request"] = {**old, "model_info": info}
        row["key"] = cache_key(row["request"])
    write_jsonl_atomic(path, sorted(rows, key=lambda r: r["key"]))
    return len(rows)


def _assert_no_secret(obj: Any, path: str = "") -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, str) and k.lower() in SECRET_FIELDS:
                raise ValueError(f"refusing to store secret field {path + k!r}")
            _assert_no_secret(v, f"{path}{k}.")
    elif isinstance(obj, list):
        for v in obj:
            _assert_no_secret(v, path)
