"""The LLM meta-controller (paper sections 3.5-3.7): any provider through litellm, replayable.

Per admitted trigger (one "LLM call" in the paper's accounting, possibly two requests):

1. read the telemetry with ``get_system_status`` (audited, caller ``llm:context``);
2. ask the model for one tool call (native tool calling, or one JSON object constrained by
   :func:`e3.agent.tool_schemas.reply_schema`);
3. validate it (JSON, known tool, arguments against the tool's schema) and execute it through the
   control surface; if it was a sensing tool and rounds remain (``max_tool_rounds``, paper: two),
   return its result and ask again.

A malformed reply (not JSON, unknown tool, arguments out of bounds) or a provider error/timeout is
counted, noted in the audit log with the raw reply, and the trigger is handed to the ``rules``
controller instead (fallback). A replay-cache miss is not a fallback: it stops the run with an
error that says how to record; nor is a provider error before any request of the run was answered
(a wrong model name or address): it stops the run, which would otherwise measure the rules.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from e3.agent.control import ControlSurface
from e3.agent.controllers import Controller, RulesController, register_controller
from e3.agent.prompt import PROMPT_VERSIONS, result_message, system_message, trigger_message
from e3.agent.tool_schemas import NO_ACTION, openai_tools, reply_schema, tool_parameters
from e3.agent.triggers import Trigger
from e3.config import REPO_ROOT
from e3.errors import ConfigError, E3Error
from e3.llm.client import LLMClient, LLMProviderError, LLMSettings

SENSING = ("get_system_status", "pull_observations", "compute_drift")


class MalformedReply(Exception):
    """The model's reply cannot be executed; ``reason`` is one of the fallback counters."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


#: ``invoke`` values of :class:`LLMController`.
INVOKE_MODES = ("all", "uncovered")
#: Triggers no rule covers (issue 31's free-text notices): the only ones ``invoke: uncovered`` sends.
UNCOVERED_TRIGGERS = ("notice_onset", "notice_end")


@register_controller
class LLMController(Controller):
    """Meta-controller backed by an LLM (config ``controllers.llm``; see :class:`LLMSettings`)."""

    name = "llm"
    #: the rules' parameters (its fallback) and every :class:`LLMSettings` field
    #: and ``prompt``: ``reasoning`` (default, 0.2.0) or ``decision_table`` (0.1.0; e3.agent.prompt)
    #: and ``invoke``: ``all`` (default: every admitted trigger reaches the model) or ``uncovered``
    #: (selective invocation, issue 31: only the triggers no rule covers, :data:`UNCOVERED_TRIGGERS`,
    #: reach the model; the rules controller handles the rest)
    parameters = {**RulesController.parameters, **{k: None for k in LLMSettings.__dataclass_fields__},
                  "prompt": "reasoning", "invoke": "all"}

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__(params)
        fields = set(LLMSettings.__dataclass_fields__)
        self.settings = LLMSettings(**{k: v for k, v in params.items() if k in fields})
        self.prompt = self.params["prompt"]
        if self.prompt not in PROMPT_VERSIONS:
            raise ConfigError(f"controllers.llm.prompt: {self.prompt!r} is not one of {sorted(PROMPT_VERSIONS)}")
        self.prompt_version = PROMPT_VERSIONS[self.prompt]
        if self.params["invoke"] not in INVOKE_MODES:
            raise ConfigError(f"controllers.llm.invoke: {self.params['invoke']!r} is not one of {list(INVOKE_MODES)}")
        self.rules_handled = 0
        self.client = LLMClient(self.settings, REPO_ROOT)
        self.rules = RulesController({k: v for k, v in params.items() if k in RulesController.parameters})
        self.fallbacks: dict[str, int] = {"malformed_json": 0, "unknown_tool": 0, "bad_arguments": 0,
                                          "provider_error": 0}
        self.no_action = 0
        self._answered = False  # has any request of this run been answered?
        self._system: str | None = None
        self._tools: list[dict[str, Any]] | None = None
        self._params: dict[str, dict[str, Any]] = {}

    # --- request building ------------------------------------------------------------------------
    def _setup(self, tools: ControlSurface) -> None:
        devices = {n: st.kind for n, st in tools._obs.devices.items()}
        names = list(devices)
        self._params = tool_parameters(names)
        native = self.settings.reply_format == "tools"
        self._tools = openai_tools(names) if native else None
        self._system = system_message(devices, None if native else openai_tools(names), self.prompt)
        self._format = None if native else {"type": "json_object", "schema": reply_schema(names)}

    def _parse(self, reply) -> list[tuple[str, dict[str, Any], str | None]]:
        """(tool, arguments, call id) triples; [] means no action. Raises MalformedReply."""
        raw_calls = [(c["name"], c["arguments"], c.get("id")) for c in reply.tool_calls]
        if not raw_calls:
            text = (reply.content or "").strip()
            if self.settings.reply_format == "tools" and not text.startswith("{"):
                return []  # a plain-text answer with no tool call is "no action" in tool mode
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise MalformedReply("malformed_json", f"reply is not JSON: {exc}") from None
            if not isinstance(obj, dict) or "name" not in obj:
                raise MalformedReply("malformed_json", "reply JSON has no 'name'")
            raw_calls = [(obj["name"], obj.get("arguments", {}), None)]
        calls = []
        for name, args, cid in raw_calls:
            if name == NO_ACTION:
                continue
            if name not in self._params:
                raise MalformedReply("unknown_tool", f"unknown tool {name!r}")
            if isinstance(args, str):
                try:
                    args = json.loads(args or "{}")
                except json.JSONDecodeError as exc:
                    raise MalformedReply("malformed_json", f"arguments of {name} are not JSON: {exc}") from None
            try:
                jsonschema.validate(args, self._params[name])
            except jsonschema.ValidationError as exc:
                raise MalformedReply("bad_arguments", f"{name}: {exc.message}") from None
            calls.append((name, args, cid))
        return calls

    # --- one trigger -------------------------------------------------------------------------------
    def handle(self, trig: Trigger, tools: ControlSurface) -> None:
        self.calls += 1
        if self.params["invoke"] == "uncovered" and trig.type not in UNCOVERED_TRIGGERS:
            self.rules_handled += 1
            caller = tools.caller
            tools.caller = f"rules(selective):{trig.type}"
            self.rules.handle(trig, tools)
            self.rules.calls -= 1  # counted once, as this controller's call
            tools.caller = caller
            return None
        if self._system is None:
            self._setup(tools)
        caller = tools.caller
        tools.caller = "llm:context"
        status = tools.call("get_system_status")
        tools.caller = caller
        messages: list[dict[str, Any]] = [{"role": "system", "content": self._system},
                                          {"role": "user", "content": trigger_message(trig, status)}]
        for _round in range(max(1, int(self.settings.max_tool_rounds))):
            try:
                reply = self.client.complete(messages, self._tools, self._format, self.prompt_version)
            except LLMProviderError as exc:
                if not self._answered:  # nothing has ever answered: a setup error, not a fallback
                    raise E3Error(f"the LLM provider failed on this run's first request ({exc}); check "
                                  f"controllers.llm (model {self.settings.model!r}, api_base "
                                  f"{self.settings.api_base!r}, api_key_env) or --llm-model; no run was "
                                  "written, as every decision would have been the rules controller's") from None
                return self._fallback(trig, tools, "provider_error", str(exc), None)
            self._answered = True
            try:
                calls = self._parse(reply)
            except MalformedReply as exc:
                return self._fallback(trig, tools, exc.reason, str(exc), reply)
            if not calls:
                self.no_action += 1
                tools.note("no_action", {"trigger": trig.type, "device": trig.device, "key": reply.key})
                return None
            results = [(name, args, cid, tools.call(name, args)) for name, args, cid in calls]
            if not all(name in SENSING for name, *_ in calls):
                return None
            messages = messages + self._continuation(reply, results)
        return None

    def _continuation(self, reply, results) -> list[dict[str, Any]]:
        if self.settings.reply_format == "tools":
            msgs: list[dict[str, Any]] = [{"role": "assistant", "content": reply.content, "tool_calls": [
                {"id": cid or f"call_{i}", "type": "function",
                 "function": {"name": n, "arguments": json.dumps(a, sort_keys=True)}}
                for i, (n, a, cid, _) in enumerate(results)]}]
            msgs += [{"role": "tool", "tool_call_id": cid or f"call_{i}", "content": json.dumps(r, sort_keys=True)}
                     for i, (_, _, cid, r) in enumerate(results)]
            return msgs
        n, a, _, r = results[0]
        return [{"role": "assistant", "content": json.dumps({"name": n, "arguments": a}, sort_keys=True)},
                {"role": "user", "content": result_message(n, r)}]

    def _fallback(self, trig: Trigger, tools: ControlSurface, reason: str, message: str, reply) -> None:
        self.fallbacks[reason] += 1
        tools.note("fallback", {"trigger": trig.type, "device": trig.device, "reason": reason, "message": message,
                                "raw_content": getattr(reply, "content", None),
                                "raw_tool_calls": getattr(reply, "tool_calls", None)})
        caller = tools.caller
        tools.caller = f"rules(fallback):{trig.type}"
        self.rules.handle(trig, tools)
        self.rules.calls -= 1  # the trigger is counted once, as an LLM call
        tools.caller = caller

    def summary(self) -> dict[str, Any]:
        c = self.client
        return {"controller_calls": self.calls, "llm_requests": c.calls, "llm_cache_hits": c.cache_hits,
                "llm_prompt_tokens": c.prompt_tokens, "llm_completion_tokens": c.completion_tokens,
                "llm_fallbacks": sum(self.fallbacks.values()), "llm_fallback_reasons": dict(self.fallbacks),
                "llm_no_action": self.no_action, "llm_model": self.settings.model,
                "llm_mode": self.settings.mode, "prompt_version": self.prompt_version,
                # only with selective invocation, so the summaries of earlier runs are unchanged
                **({"llm_invoke": "uncovered", "rules_handled": self.rules_handled}
                   if self.params["invoke"] != "all" else {})}
