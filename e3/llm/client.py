"""The one wrapper around every LLM call: litellm for the provider, :mod:`e3.llm.cache` for replay.

Modes (config ``controllers.llm.mode`` or ``e3 simulate --llm-mode``):

* ``replay`` (default): answer from the committed export (``frozen``, ``results/llm/*.jsonl``)
  itself, read at start; the diskcache store is not consulted, so a stale or hand-changed cache
  entry can never answer. Without a ``frozen`` file, answer from the diskcache store. A miss is an
  :class:`LLMCacheMiss` that names the key and says how to record.
* ``record``: the export is loaded into the diskcache store first (an entry that differs from the
  export's is replaced); answer from the store when possible, otherwise call the provider and
  store the reply.
* ``live``: always call the provider; nothing is stored.

The API key is read from the environment variable named by ``api_key_env`` at call time and
passed to litellm only; it never enters a request record, the cache, the audit log or an output.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e3.errors import ConfigError, E3Error
from e3.llm.cache import ResponseCache, cache_key, canonical_request, read_export

# No network at import: litellm otherwise fetches its model cost map from GitHub.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

MODES = ("replay", "record", "live")


class LLMCacheMiss(E3Error):
    """Replay mode found no stored response for a request."""


class LLMProviderError(E3Error):
    """The provider failed (connection, timeout, HTTP error); the controller falls back."""


@dataclass
class LLMSettings:
    """Provider and replay settings (config ``controllers.llm``).

    Attributes:
        model: litellm model string, e.g. ``openai/gpt-4o-mini``, ``anthropic/claude-...``,
            ``ollama_chat/qwen2.5``, ``hosted_vllm/...``, or ``openai/NAME`` with ``api_base`` for a
            local OpenAI-compatible server.
        api_base: provider base URL, or None for the provider default. Part of the cache key.
        api_key_env: name of the environment variable holding the key (never the key itself).
        temperature: sampling temperature (0: greedy).
        seed: sampling seed passed to providers that accept one.
        max_tokens: reply budget in tokens.
        timeout_s: per-request timeout in seconds.
        mode: ``replay``, ``record`` or ``live``.
        cache_dir: diskcache folder (git-ignored working store).
        frozen: committed JSONL export loaded into the store in replay/record modes.
        reply_format: ``tools`` (native tool calling) or ``json_schema`` (the reply is one JSON
            object ``{"name": tool, "arguments": {...}}`` constrained by a schema; for small local
            models served by llama.cpp).
        max_tool_rounds: tool rounds per invocation (paper section 3.5: at most two).
        model_info: the model's identity (weights file, its sha256, server); part of the cache key
            and stored with each recorded reply.
        litellm_kwargs: extra keyword arguments for ``litellm.completion`` (tests use
            ``mock_response``/``mock_tool_calls``); they are not part of the key.
    """

    model: str = "openai/qwen2.5-coder-1.5b-instruct-q4_k_m"
    api_base: str | None = "http://127.0.0.1:8765/v1"
    api_key_env: str | None = None
    temperature: float = 0.0
    seed: int = 0
    max_tokens: int = 160
    timeout_s: float = 120.0
    mode: str = "replay"
    cache_dir: str = "resources/llm_cache"
    frozen: str | None = "results/llm/responses.jsonl"
    reply_format: str = "json_schema"
    max_tool_rounds: int = 2
    model_info: dict[str, Any] = field(default_factory=dict)
    litellm_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"controllers.llm.mode: {self.mode!r} is not one of {list(MODES)}")
        if self.reply_format not in ("tools", "json_schema"):
            raise ConfigError(f"controllers.llm.reply_format: {self.reply_format!r} is not 'tools' or 'json_schema'")


@dataclass
class LLMReply:
    """A normalised reply. ``tool_calls`` items are ``{"id", "name", "arguments"}`` with
    ``arguments`` the raw string the model produced (parsed and validated by the controller)."""

    content: str | None
    tool_calls: list[dict[str, Any]]
    usage: dict[str, int]
    key: str
    cached: bool


# Replay exports already read by this process, by (path, size, mtime): a batch job runs many
# replaying clients, and checking every key of an export against its request's hash costs more
# than a short run (issue 11). The entries are only read; replies copy what they hand out.
_REPLAY_EXPORTS: dict[tuple[str, int, int], dict[str, dict[str, Any]]] = {}


def _replay_entries(path: Path) -> dict[str, dict[str, Any]]:
    """:func:`e3.llm.cache.read_export` of ``path``, read once per process while the file is
    unchanged (same size and modification time). Raises what ``read_export`` raises."""
    st = path.stat()
    sig = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if sig not in _REPLAY_EXPORTS:
        _REPLAY_EXPORTS[sig] = read_export(path)
    return _REPLAY_EXPORTS[sig]


class LLMClient:
    """Owns every LLM call of a run; counts calls, cache hits and tokens.

    Args:
        settings: provider and replay settings.
        root: folder against which relative ``cache_dir``/``frozen`` paths resolve.
    """

    def __init__(self, settings: LLMSettings, root: str | Path = ".") -> None:
        self.settings = s = settings
        root = Path(root)
        self.cache: ResponseCache | None = None
        self._frozen: dict[str, dict[str, Any]] | None = None  # replay: the export's entries
        fz = None
        if s.frozen:
            fz = Path(s.frozen) if Path(s.frozen).is_absolute() else root / s.frozen
            fz = fz if fz.exists() else None
        if s.mode == "replay" and fz is not None:
            self._frozen = _replay_entries(fz)
        elif s.mode != "live":
            cdir = Path(s.cache_dir)
            self.cache = ResponseCache(cdir if cdir.is_absolute() else root / cdir)
            if fz is not None:
                self.cache.import_jsonl(fz)
        self.calls = 0
        self.cache_hits = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def request(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
                response_format: dict[str, Any] | None, prompt_version: str) -> dict[str, Any]:
        """The keyed request record for these messages (no secrets)."""
        s = self.settings
        return {"model": s.model, "api_base": s.api_base, "messages": messages, "tools": tools,
                "temperature": s.temperature, "seed": s.seed, "max_tokens": s.max_tokens,
                "response_format": response_format, "prompt_version": prompt_version,
                "model_info": s.model_info}

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                 response_format: dict[str, Any] | None = None, prompt_version: str = "") -> LLMReply:
        """One chat completion, from the cache or the provider (by mode).

        Raises:
            LLMCacheMiss: replay mode and no stored reply.
            LLMProviderError: the provider call failed or timed out.
        """
        req = self.request(messages, tools, response_format, prompt_version)
        key = cache_key(req)
        self.calls += 1
        if self._frozen is not None:
            entry = self._frozen.get(key)
        else:
            entry = self.cache.get(key) if self.cache is not None else None
        if entry is not None:
            self.cache_hits += 1
            return self._reply(entry["response"], key, cached=True)
        if self.settings.mode == "replay":
            raise LLMCacheMiss(
                f"no recorded LLM response for key {key} (model {self.settings.model!r}, api_base "
                f"{self.settings.api_base!r}, prompt {prompt_version!r}, model_info "
                f"{self.settings.model_info!r}, answers from {self.settings.frozen or self.settings.cache_dir}). "
                f"Record it by re-running with "
                f"--llm-mode record against a reachable provider (see docs/llm-controller.md), or "
                f"use --controller rules")
        response = self._call_provider(req)
        if self.cache is not None:
            self.cache.put(key, {"request": canonical_request(req), "response": response,
                                 "meta": {"model_info": self.settings.model_info,
                                          "recorded_unix_s": round(time.time())}})
        return self._reply(response, key, cached=False)

    def _reply(self, response: dict[str, Any], key: str, cached: bool) -> LLMReply:
        usage = response.get("usage") or {}
        self.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        self.completion_tokens += int(usage.get("completion_tokens") or 0)
        # copies: a replayed response is shared by every client of the process (_replay_entries)
        return LLMReply(response.get("content"), [dict(tc) for tc in response.get("tool_calls") or []],
                        {k: int(v or 0) for k, v in usage.items()}, key, cached)

    def _call_provider(self, req: dict[str, Any]) -> dict[str, Any]:
        import litellm

        s = self.settings
        kwargs: dict[str, Any] = {"model": s.model, "messages": req["messages"], "temperature": s.temperature,
                                  "seed": s.seed, "max_tokens": s.max_tokens, "timeout": s.timeout_s,
                                  "num_retries": 0, **s.litellm_kwargs}
        if s.api_base:
            kwargs["api_base"] = s.api_base
        if req["tools"]:
            kwargs["tools"] = req["tools"]
        if req["response_format"]:
            kwargs["response_format"] = req["response_format"]
        if s.api_key_env:
            key = os.environ.get(s.api_key_env)
            if not key:
                raise LLMProviderError(f"environment variable {s.api_key_env} (controllers.llm.api_key_env) is not set")
            kwargs["api_key"] = key
        elif s.api_base:
            kwargs["api_key"] = "none"  # local OpenAI-compatible servers ignore it; litellm wants one
        try:
            resp = litellm.completion(**kwargs)
        except Exception as exc:  # provider, network and timeout errors of any provider
            raise LLMProviderError(f"{type(exc).__name__}: {_redact(str(exc), kwargs.get('api_key'))}") from None
        return normalise(resp)


def normalise(resp: Any) -> dict[str, Any]:
    """A litellm ``ModelResponse`` as a plain, JSON-serialisable dict (content, tool calls, usage)."""
    msg = resp.choices[0].message
    calls = []
    for i, tc in enumerate(getattr(msg, "tool_calls", None) or []):
        calls.append({"id": getattr(tc, "id", None) or f"call_{i}", "name": tc.function.name,
                      "arguments": tc.function.arguments if isinstance(tc.function.arguments, str)
                      else json.dumps(tc.function.arguments)})
    u = getattr(resp, "usage", None)
    usage = {"prompt_tokens": int(getattr(u, "prompt_tokens", 0) or 0),
             "completion_tokens": int(getattr(u, "completion_tokens", 0) or 0)}
    return {"content": msg.content, "tool_calls": calls, "usage": usage,
            "finish_reason": resp.choices[0].finish_reason, "model": getattr(resp, "model", None)}


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret and secret != "none" else text
