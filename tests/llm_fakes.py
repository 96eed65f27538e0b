"""Deterministic stand-ins for an LLM provider, through litellm's own extension points.

``ScriptedLLM`` is a litellm ``CustomLLM`` that follows the prompt's rules (or a scripted list of
raw replies) so that whole simulations can run the ``llm`` controller offline; replies go through
``litellm.completion(mock_response=...)`` so they are real ``ModelResponse`` objects.
"""

from __future__ import annotations

import json
import re

import litellm
from litellm import CustomLLM

PROVIDER = "e3test"


class ScriptedLLM(CustomLLM):
    """Replies per the prompt's rules; or, if ``script`` is given, the next raw string of it.
    Records every request's keyword arguments (to check what reaches a provider)."""

    def __init__(self, script: list[str] | None = None) -> None:
        super().__init__()
        self.script = list(script) if script is not None else None
        self.requests: list[dict] = []

    def completion(self, *args, **kwargs):
        self.requests.append(kwargs)
        msgs = kwargs["messages"]
        if self.script is not None:
            text = self.script.pop(0) if self.script else '{"name": "no_action", "arguments": {}}'
        else:
            text = json.dumps(follow_rules(msgs[-1]["content"]))
        return litellm.completion(model="gpt-4o-mini", messages=msgs, mock_response=text)


class FlakyLLM(ScriptedLLM):
    """Answers the first ``good`` requests as :class:`ScriptedLLM`, then times out on every one (a
    provider that goes down mid-run; ``good=0``: down from the start)."""

    def __init__(self, good: int = 1) -> None:
        super().__init__()
        self.good = good

    def completion(self, *args, **kwargs):
        if len(self.requests) >= self.good:
            self.requests.append(kwargs)
            raise litellm.Timeout(message="timed out", model="x", llm_provider="openai")
        return super().completion(*args, **kwargs)


def follow_rules(user_text: str) -> dict:
    """The prompt's rules as code (what a perfect model would answer)."""
    if user_text.startswith("Result of compute_drift"):
        res = json.loads(re.search(r"Result of compute_drift: (\{.*\})", user_text).group(1))
        if "calibration_proposed" in res:
            return {"name": "update_calibration",
                    "arguments": {"device": res["device"], "factor": res["calibration_proposed"]}}
        return {"name": "no_action", "arguments": {}}
    if user_text.startswith("Result of"):
        return {"name": "no_action", "arguments": {}}
    ev = json.loads(re.search(r"Event: (\{.*\})", user_text).group(1))
    t, d = ev["trigger"], ev["device"]
    if t == "semantic_onset":
        return {"name": "set_device_risky", "arguments": {"device": d}}
    if t == "semantic_offset":
        return {"name": "clear_device_risky", "arguments": {"device": d}}
    if t in ("drift_alarm", "residual_alarm"):
        return {"name": "compute_drift", "arguments": {"device": d, "window_s": 60}}
    if t == "warmup_point":
        return {"name": "trigger_online_profile_update", "arguments": {"min_samples": 1}}
    return {"name": "no_action", "arguments": {}}


def install(handler: CustomLLM) -> None:
    """Register ``handler`` as provider ``e3test`` (model strings ``e3test/NAME``)."""
    litellm.custom_provider_map = [{"provider": PROVIDER, "custom_handler": handler}]
    litellm.utils.custom_llm_setup()
