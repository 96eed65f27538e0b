"""The served system: nodes, models, memory demands and service priors from the MLPerf records.

Service priors (spec "To invent", all config ``fairness``): text models follow Eq. 1,
``alpha * L_in + beta * L_out`` with ``beta = max(tpot_ms_p99 * params / 8e9, min_beta)`` and
``alpha = ttft_ms_p99 / reference_input_tokens * params / 8e9`` from the GPU node's
llama3.1-8b-edge record; BLIP adds a vision-encode time to a ``caption_tokens`` decode; Stable
Diffusion is ``sdxl_scale * latency_ms_p99`` of the GPU node's SDXL record (Eq. 2). CPU nodes take
``cpu_slowdown`` times longer (text or image). Memory: ``memory_gb`` on a GPU node's
``gpu_mem_gb``; ``memory_gb * cpu_memory_factor`` on a CPU node's ``ram_gb``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e3.config import REPO_ROOT
from e3.errors import ConfigError
from e3.fairness.engine import RequestView
from e3.mlperf.pool import match_record
from e3.mlperf.priors import load_priors


@dataclass(frozen=True)
class ModelInfo:
    """One served model (config ``fairness.models.NAME``) with its GPU-node Eq. 1/2 priors.

    Attributes:
        name: model name; modality: ``text``, ``image_to_text`` or ``text_to_image``.
        alpha_ms_per_token / beta_ms_per_token: Eq. 1 coefficients on a GPU node (text, BLIP).
        fixed_ms: constant part on a GPU node (BLIP vision encode; Stable Diffusion's whole time).
        caption_tokens: BLIP's generated tokens (its output length is fixed).
        memory_gb: fp16 footprint on a GPU node.
        activation_ms: nominal pod activation delay.
        in_bytes / out_bytes: payload sizes; input_token_bins / output_token_bins: text draws.
    """

    name: str
    modality: str
    alpha_ms_per_token: float
    beta_ms_per_token: float
    fixed_ms: float
    caption_tokens: int
    memory_gb: float
    activation_ms: float
    in_bytes: int
    out_bytes: int
    input_token_bins: tuple[int, ...]
    output_token_bins: tuple[int, ...]

    def gpu_service_ms(self, input_tokens: int, output_tokens: int) -> float:
        """Prior service time on a GPU node (ms)."""
        if self.modality == "text_to_image":
            return self.fixed_ms
        if self.modality == "image_to_text":
            return self.fixed_ms + self.alpha_ms_per_token * input_tokens + self.beta_ms_per_token * self.caption_tokens
        return self.alpha_ms_per_token * input_tokens + self.beta_ms_per_token * output_tokens

    def mean_gpu_service_ms(self) -> float:
        """Prior GPU service time averaged over the token bins (uniform draws)."""
        li = sum(self.input_token_bins) / len(self.input_token_bins) if self.input_token_bins else 0.0
        lo = sum(self.output_token_bins) / len(self.output_token_bins) if self.output_token_bins else 0.0
        return self.gpu_service_ms(li, lo)


@dataclass(frozen=True)
class System:
    """Topology and priors shared by every run of the fairness system (public information).

    Attributes:
        nodes: (name, kind, capacity) per node, GPU nodes first (``gpu0``, ``gpu1``, ``cpu0``...).
        models: model name -> :class:`ModelInfo`, sorted by name.
        cpu_slowdown: ``{"text": x, "image": y}``; cpu_memory_factor: RAM factor on CPU nodes.
        records: provenance of the two MLPerf records used.
    """

    nodes: tuple[tuple[str, str, dict[str, float]], ...]
    models: dict[str, ModelInfo]
    cpu_slowdown: dict[str, float]
    cpu_memory_factor: float
    records: dict[str, str]

    @property
    def node_names(self) -> list[str]:
        """Node names, GPU nodes first."""
        return [n for n, _, _ in self.nodes]

    @property
    def node_kind(self) -> dict[str, str]:
        """node -> ``gpu`` or ``cpu`` (a new dict per call: callers may keep or change it)."""
        return dict(self._kinds)

    @functools.cached_property
    def _kinds(self) -> dict[str, str]:
        # The system's own lookup (prior_service_ms runs once per request), never handed out.
        return {n: k for n, k, _ in self.nodes}

    def demand(self, node: str, model: str) -> dict[str, float]:
        """Capacity demand of a ``model`` pod on ``node``."""
        m = self.models[model]
        if self._kinds[node] == "gpu":
            return {"gpu_mem_gb": m.memory_gb}
        return {"ram_gb": m.memory_gb * self.cpu_memory_factor}

    def slowdown(self, node: str, model: str) -> float:
        """Service-time factor of ``node`` relative to a GPU node."""
        if self._kinds[node] == "gpu":
            return 1.0
        return self.cpu_slowdown["image" if self.models[model].modality == "text_to_image" else "text"]

    def prior_service_ms(self, node: str, request: RequestView) -> float:
        """Prior service time of ``request`` on ``node`` (ms)."""
        m = self.models[request.model]
        return m.gpu_service_ms(request.input_tokens, request.output_tokens) * self.slowdown(node, request.model)

    def mean_service_ms(self, node: str, model: str) -> float:
        """Prior mean service time of ``model`` on ``node`` (ms)."""
        return self.models[model].mean_gpu_service_ms() * self.slowdown(node, model)


def build_system(cfg: dict[str, Any]) -> System:
    """The :class:`System` of the validated config (reads the frozen priors file).

    Raises:
        ConfigError: missing ``fairness`` section, a record selector matching no or several
        records, a text-record without TTFT/TPOT, no node at all.
    """
    f = cfg.get("fairness")
    if not f:
        raise ConfigError("config: field 'fairness' is missing (the fairness system's section)")
    path = Path(cfg["priors"]["frozen"])
    if not path.is_absolute() and not path.exists():
        path = REPO_ROOT / path
    records = load_priors(path)
    text = match_record(records, {"name": "fairness.device_priors.text", **f["device_priors"]["text"]})
    image = match_record(records, {"name": "fairness.device_priors.image", **f["device_priors"]["image"]})
    tm, im = text["metrics"], image["metrics"]
    for k in ("ttft_ms_p99", "tpot_ms_p99"):
        if k not in tm:
            raise ConfigError(f"fairness.device_priors.text: record {text['system']!r} has no {k}")
    scale_ref = f["reference_params"]
    alpha_8b = tm["ttft_ms_p99"] / cfg["priors"]["reference_input_tokens"]
    models = {}
    # Canonical (sorted) model order: loops, the MILP's variable order (its tie-breaking) and the
    # naive deployment's rotation follow it, so results must not depend on how a YAML file (or
    # Snakemake's sorted dump of the effective config) happens to order the keys.
    for name, m in sorted(f["models"].items()):
        r = m["params"] / scale_ref
        beta = max(tm["tpot_ms_p99"] * r, f["min_beta_ms_per_token"])
        alpha = alpha_8b * r
        fixed, cap = 0.0, 0
        if m["modality"] == "image_to_text":
            fixed, cap = 1000.0 * m.get("vision_encode_s", 0.0), int(m.get("caption_tokens", 0))
        elif m["modality"] == "text_to_image":
            if "sdxl_scale" not in m:
                raise ConfigError(f"fairness.models.{name}: a text_to_image model needs 'sdxl_scale'")
            fixed, alpha, beta = m["sdxl_scale"] * im["latency_ms_p99"], 0.0, 0.0
        text_like = m["modality"] == "text"
        models[name] = ModelInfo(name, m["modality"], alpha, beta, fixed, cap, m["memory_gb"], 1000.0 * m["activation_s"],
                                 m["in_bytes"], m["out_bytes"],
                                 tuple(m.get("input_token_bins", ())) if text_like else (),
                                 tuple(m.get("output_token_bins", ())) if text_like else ())
        if text_like and not (models[name].input_token_bins and models[name].output_token_bins):
            raise ConfigError(f"fairness.models.{name}: a text model needs input_token_bins and output_token_bins")
    nodes = []
    for kind in ("gpu", "cpu"):
        g = f["nodes"][kind]
        for i in range(g["count"]):
            nodes.append((f"{kind}{i}", kind, {"gpu_mem_gb": float(g["gpu_mem_gb"]), "ram_gb": float(g["ram_gb"])}))
    if not nodes:  # every later step (reference times, the static plan) needs one (issue 33, defect 11)
        raise ConfigError("fairness.nodes: gpu.count + cpu.count is 0; the system needs at least one node")
    return System(tuple(nodes), models, dict(f["cpu_slowdown"]), f["cpu_memory_factor"],
                  {"text": f"{text['system']} ({text['round']})", "image": f"{image['system']} ({image['round']})"})
