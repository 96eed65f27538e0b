"""Multi-model serving engine (salabim): nodes with pods created and removed at run time, routing
from ingress nodes over a network, processor sharing of a node's accelerator, request timeouts.

Built for the multi-agentic fairness system (arXiv 2602.07215; what is known of it and the
defaults chosen: docs/fairness.md) from the kernel primitives :mod:`e3.sim.nodes` and
:mod:`e3.sim.network`; the E3 engine (:mod:`e3.sim.engine`) is untouched. Simulated time is in ms.

Request flow: a request arrives at its ingress node; the policy's ``route`` names an active pod
of its model (or None: it waits at the ingress until a pod is active or it times out); it travels
``transfer_ms(ingress, node, in_bytes)``; it queues FIFO at the pod; the pod serves its head when
the node admits it (processor sharing: every pod with work runs at rate 1/k; ``fifo``: one job per
node, oldest first); the answer travels back ``transfer_ms(node, ingress, out_bytes)``.

Outcomes (each request resolves exactly once; ``served + timed_out + failed == issued``):
``served`` (answer back by its deadline), ``timed_out`` (still waiting at its deadline, dropped
when seen at a slot tick or at the head of its queue, or answered after it), ``failed`` (its pod
was deactivated while it was queued, in service or in transit, with ``deactivation = "fail"``;
with ``"requeue"`` it is routed again instead).

Control: at t = 0 the policy's ``initial_deployment`` pods are active at once (prebuilt, running;
or, with ``initial_active=False``, they start with their activation delays);
at every slot boundary (``slot_ms``) the engine closes the slot's telemetry and calls
``policy.on_slot(obs)``, which returns pods to deactivate and to activate. An activation reserves
the pod's demand (refused and counted if it does not fit) and completes after its activation
delay; a deactivation frees the demand after ``deactivation_ms``.

Information boundary: policies hold a :class:`ServingObservation` (status mirrors, counters,
completed-request records with public features) and never the engine, the truth or the pods.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import salabim as sim

from e3.errors import E3Error
from e3.seeds import stream
from e3.sim.components import CallbackTimers, LeanComponent, QuietEnvironment, quiet_component
from e3.sim.network import Network
from e3.sim.nodes import ACTIVATING, ACTIVE, DEACTIVATING, INACTIVE, Node, Pod, SharedProcessor
from e3.sim.trace import RowTraceWriter

sim.yieldless(False)

SERVED, TIMED_OUT, FAILED = "served", "timed_out", "failed"

TRACE_SCHEMA = pa.schema([
    ("request_id", pa.int64()), ("model", pa.string()), ("ingress", pa.string()), ("node", pa.string()),
    ("arrival_ms", pa.float64()), ("dispatch_ms", pa.float64()), ("start_ms", pa.float64()),
    ("end_ms", pa.float64()), ("service_ms", pa.float64()), ("latency_ms", pa.float64()),
    ("outcome", pa.string()), ("reroutes", pa.int32()),
])


class ServingPolicyError(E3Error):
    """A policy routed a request to a pod that does not exist or is not active."""


@dataclass(frozen=True, slots=True)
class RequestView:
    """What a router knows about a request: its public features, never its service time.

    Attributes:
        request_id: 0-based arrival index.
        model: requested model.
        ingress: node where the request enters the network.
        input_tokens: prompt length (0 where not applicable).
        output_tokens: generated length (0 where not applicable).
        in_bytes: payload sent to the serving node.
        out_bytes: payload returned.
        arrival_ms: arrival time.
    """

    request_id: int
    model: str
    ingress: str
    input_tokens: int
    output_tokens: int
    in_bytes: int
    out_bytes: int
    arrival_ms: float


@dataclass(frozen=True, slots=True)
class CompletedRequest:
    """Delayed feedback: one resolved request (served, timed out or failed)."""

    request: RequestView
    node: str
    outcome: str
    end_ms: float
    latency_ms: float


@dataclass(slots=True)
class PodStatus:
    """Telemetry mirror of one pod (what a deployment agent or scheduler may read)."""

    node: str
    model: str
    state: str = INACTIVE
    queue_length: int = 0
    busy: bool = False
    activations: int = 0
    active_since_ms: float = 0.0


@dataclass(slots=True)
class NodeStatus:
    """Telemetry mirror of one node: kind, capacity and current reservations."""

    name: str
    kind: str
    capacity: dict[str, float]
    used: dict[str, float]
    busy_jobs: int = 0


@dataclass(slots=True)
class ModelCounters:
    """Per-model counters over a window (a slot or an epoch)."""

    arrivals: int = 0
    served: int = 0
    timed_out: int = 0
    failed: int = 0
    latency_sum_ms: float = 0.0

    def add(self, other: ModelCounters) -> None:
        """Accumulate ``other`` into self."""
        self.arrivals += other.arrivals
        self.served += other.served
        self.timed_out += other.timed_out
        self.failed += other.failed
        self.latency_sum_ms += other.latency_sum_ms


@dataclass
class ServingObservation:
    """Everything a serving policy may see (telemetry only).

    Attributes:
        now_ms: current simulated time.
        slot: index of the slot that starts now (at ``on_slot``).
        epoch: ``slot // epoch_slots``.
        slot_ms: slot length; epoch_slots: slots per epoch.
        nodes: node name -> :class:`NodeStatus`.
        pods: (node, model) -> :class:`PodStatus`.
        pending: model -> requests waiting at ingress nodes for an active pod.
        last_slot: model -> counters of the slot just closed.
        last_epoch: model -> counters of the epoch just closed (empty before the first).
        recent: the most recent resolved requests (bounded).
        activation_ms_observed: (node, model, measured activation delay) of completed activations.
    """

    slot_ms: float
    epoch_slots: int
    nodes: dict[str, NodeStatus]
    pods: dict[tuple[str, str], PodStatus]
    models: tuple[str, ...]
    now_ms: float = 0.0
    slot: int = 0
    epoch: int = 0
    pending: dict[str, int] = field(default_factory=dict)
    last_slot: dict[str, ModelCounters] = field(default_factory=dict)
    last_epoch: dict[str, ModelCounters] = field(default_factory=dict)
    recent: deque = field(default_factory=lambda: deque(maxlen=2000))
    activation_ms_observed: list[tuple[str, str, float]] = field(default_factory=list)

    _active: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)

    def active_pods(self, model: str) -> list[str]:
        """Nodes with an active pod of ``model``, in node order (a new list per call)."""
        nodes = self._active.get(model)
        if nodes is None:  # routers ask per request; pod states change per slot at most
            nodes = self._active[model] = tuple(n for n in self.nodes if self.pods[(n, model)].state == ACTIVE)
        return list(nodes)

    def pod_state_changed(self, model: str) -> None:
        """Engine hook: a pod of ``model`` changed state, so its active nodes are recomputed."""
        self._active.pop(model, None)


@dataclass(frozen=True)
class SlotDecision:
    """A policy's actions at a slot boundary: pods to stop, then pods to start."""

    deactivate: tuple[tuple[str, str], ...] = ()
    activate: tuple[tuple[str, str], ...] = ()


class ServingPolicy(Protocol):
    """What the engine calls (the kernel never imports a concrete policy)."""

    name: str

    def initial_deployment(self, obs: ServingObservation) -> Iterable[tuple[str, str]]:
        """Pods active at t = 0."""

    def on_slot(self, obs: ServingObservation) -> SlotDecision:
        """Deployment actions at a slot boundary (routing state is the policy's own)."""

    def route(self, request: RequestView, obs: ServingObservation) -> str | None:
        """Node of an active pod of ``request.model``, or None to hold it at the ingress."""

    def on_complete(self, record: CompletedRequest, obs: ServingObservation) -> None:
        """Delayed feedback for a resolved request."""

    def summary(self) -> dict[str, Any]:
        """Policy counters for the run summary."""


@dataclass(frozen=True)
class ServingSpec:
    """Engine settings (config ``fairness``; every value documented there).

    Attributes:
        slot_ms: control slot; epoch_slots: slots per epoch.
        timeout_ms: end-to-end request timeout.
        sharing: ``processor_sharing`` or ``fifo`` (per node).
        deactivation: ``fail`` or ``requeue`` for in-flight requests of a stopped pod.
        deactivation_ms: time until a stopped pod frees its demand.
        activation_ms: model -> nominal activation delay.
        activation_jitter: uniform relative jitter on activation delays (0.2 = +-20 %).
        mismatch_sigma: log-normal sigma of the hidden per-(node, model) speed factor.
        noise_sigma: log-normal sigma of the per-request service noise (mean one).
        initial_active: the t = 0 deployment is running at once (True) or starts with its
            activation delays (False).
    """

    slot_ms: float
    epoch_slots: int
    timeout_ms: float
    activation_ms: dict[str, float]
    sharing: str = "processor_sharing"
    deactivation: str = "fail"
    deactivation_ms: float = 5000.0
    activation_jitter: float = 0.2
    mismatch_sigma: float = 0.0
    noise_sigma: float = 0.0
    initial_active: bool = True

    def __post_init__(self) -> None:
        if self.sharing not in ("processor_sharing", "fifo"):
            raise E3Error(f"fairness.sharing: {self.sharing!r} is not 'processor_sharing' or 'fifo'")
        if self.deactivation not in ("fail", "requeue"):
            raise E3Error(f"fairness.deactivation: {self.deactivation!r} is not 'fail' or 'requeue'")
        for name, v in (("slot_ms", self.slot_ms), ("timeout_ms", self.timeout_ms)):
            if not v > 0:
                raise E3Error(f"fairness: {name} must be > 0 (value: {v!r})")


class ServingTruth:
    """Hidden service times: prior x per-(node, model) mismatch x per-request noise.

    Args:
        base_ms: ``(node, request) -> prior service ms`` on that node's hardware.
        pods: the (node, model) keys.
        mismatch_sigma / noise_sigma: log-normal sigmas (noise has mean one).
        rng: the replicate's truth stream (mismatch drawn in sorted key order).
    """

    def __init__(self, base_ms: Callable[[str, RequestView], float], pods: Iterable[tuple[str, str]],
                 mismatch_sigma: float, noise_sigma: float, rng: random.Random) -> None:
        self.base_ms = base_ms
        self.factor = {k: math.exp(rng.gauss(0.0, mismatch_sigma)) if mismatch_sigma > 0 else 1.0
                       for k in sorted(pods)}
        self.noise_sigma = noise_sigma

    def noise(self, rng: random.Random) -> float:
        """One per-request noise factor (log-normal, mean one)."""
        s = self.noise_sigma
        return math.exp(rng.gauss(-0.5 * s * s, s)) if s > 0 else 1.0

    def work_ms(self, node: str, request: RequestView, noise: float) -> float:
        """Exclusive-service work of ``request`` on ``node`` in ms."""
        return self.base_ms(node, request) * self.factor[(node, request.model)] * noise


class _Req:
    __slots__ = ("view", "deadline_ms", "noise", "node", "dispatch_ms", "enqueue_ms", "start_ms",
                 "service_ms", "reroutes", "done", "transit")

    def __init__(self, view: RequestView, deadline_ms: float, noise: float) -> None:
        self.view, self.deadline_ms, self.noise = view, deadline_ms, noise
        self.node = ""
        self.dispatch_ms = self.enqueue_ms = self.start_ms = math.nan
        self.service_ms = 0.0
        self.reroutes = 0
        self.done = False
        self.transit = 0  # bumped on every send: a stale delivery is ignored


@dataclass
class ServingStats:
    """Counters of a run (latency statistics come from the trace)."""

    issued: int = 0
    served: int = 0
    timed_out: int = 0
    failed: int = 0
    reroutes: int = 0
    activations: int = 0
    deactivations: int = 0
    refused_activations: int = 0
    busy_ms: dict[str, float] = field(default_factory=dict)
    makespan_ms: float = 0.0
    max_used: dict[str, dict[str, float]] = field(default_factory=dict)
    wall_s: float = 0.0


class _NodeProc(LeanComponent):
    def setup(self, model: ServingSimulation, node: str) -> None:
        self.model, self.node = model, node
        quiet_component(self)

    def process(self):
        while True:
            dt = self.model._node_step(self.node)
            if dt is None:
                yield self.passivate()
            else:
                yield self.hold(dt)


class _ArrivalProc(LeanComponent):
    def setup(self, model: ServingSimulation, requests: Iterable[RequestView]) -> None:
        self.model, self.requests = model, requests
        quiet_component(self)

    def process(self):
        for r in self.requests:
            wait = r.arrival_ms - self.env.now()
            if wait > 0:
                yield self.hold(wait)
            self.model._arrive(r)
        self.model._arrivals_done = True


class _SlotProc(LeanComponent):
    def setup(self, model: ServingSimulation) -> None:
        self.model = model
        quiet_component(self)

    def process(self):
        m = self.model
        while True:
            m._slot_tick()
            if m._arrivals_done and m.stats.issued == m._resolved:
                return
            yield self.hold(m.spec.slot_ms)


class ServingSimulation:
    """One run of one serving policy on one request stream.

    Args:
        nodes: the serving nodes (fresh :class:`Node` objects; reservations start empty).
        models: model names.
        demand: ``(node, model) -> capacity demand`` of that pod on that node.
        network: delays between nodes.
        requests: the request stream in arrival order (ids 0..N-1 in order).
        base_service_ms: ``(node, request) -> prior service ms`` (the truth multiplies it).
        spec: engine settings.
        policy_factory: ``() -> ServingPolicy``; called once, after the telemetry exists.
        seed: replicate seed (truth mismatch, noise and activation jitter derive from it alone).
        trace_path: per-request trace (.parquet or .csv).

    Raises:
        E3Error: bad spec values, unknown nodes in ``demand``; :class:`ServingPolicyError` when a
        policy routes to an inactive pod; conservation violated at the end.
    """

    def __init__(self, nodes: list[Node], models: list[str], demand: dict[tuple[str, str], dict[str, float]],
                 network: Network, requests: list[RequestView], base_service_ms: Callable[[str, RequestView], float],
                 spec: ServingSpec, policy_factory: Callable[[ServingObservation], ServingPolicy], seed: int,
                 trace_path: str | Path) -> None:
        self.spec, self.network, self.trace_path = spec, network, Path(trace_path)
        self.models = list(models)
        self._nodes = {n.name: n for n in nodes}
        self._pods = {(n.name, m): Pod(n.name, m, dict(demand[(n.name, m)])) for n in nodes for m in models}
        self._node_pods = {n.name: [self._pods[(n.name, m)] for m in models] for n in nodes}  # model order
        self._requests = requests
        self._truth = ServingTruth(base_service_ms, self._pods, spec.mismatch_sigma, spec.noise_sigma,
                                   stream(seed, "serving", "truth"))
        self._noise_rng = stream(seed, "serving", "noise")
        self._activation_rng = stream(seed, "serving", "activation")
        self._proc = {n: SharedProcessor() for n in self._nodes}
        self._reqs: dict[int, _Req] = {}
        self._pending: dict[str, deque] = {m: deque() for m in models}
        self._status = {k: PodStatus(*k) for k in self._pods}
        self.obs = ServingObservation(
            spec.slot_ms, spec.epoch_slots,
            {n.name: NodeStatus(n.name, n.kind, dict(n.capacity), dict(n.used)) for n in nodes},
            self._status, tuple(models), pending={m: 0 for m in models},
            last_slot={m: ModelCounters() for m in models})
        self._cur = {m: ModelCounters() for m in models}
        self._epoch_acc = {m: ModelCounters() for m in models}
        self.stats = ServingStats(busy_ms={n: 0.0 for n in self._nodes},
                                  max_used={n: {d: 0.0 for d in self._nodes[n].capacity} for n in self._nodes})
        self._resolved = 0
        self._arrivals_done = False
        self.policy = policy_factory(self.obs)
        self._writer: RowTraceWriter | None = None

    # --- telemetry mirrors ------------------------------------------------------------------------
    def _sync(self, pod: Pod) -> None:
        st = self._status[pod.key]
        if st.state != pod.state:
            self.obs.pod_state_changed(pod.model)
        st.state, st.queue_length, st.busy, st.activations = pod.state, len(pod.queue), pod.in_service is not None, pod.activations
        self.obs.nodes[pod.node].busy_jobs = len(self._proc[pod.node])

    def _sync_used(self, node_name: str) -> None:
        """Mirror a node's reservations and track their maxima; called wherever they change
        (:meth:`Node.reserve` in ``_activate``, :meth:`Node.release` in ``_deactivated``)."""
        node = self._nodes[node_name]
        self.obs.nodes[node_name].used.update(node.used)
        mu = self.stats.max_used[node_name]
        for d, v in node.used.items():
            mu[d] = max(mu[d], v)

    # --- pod life cycle ---------------------------------------------------------------------------
    def _activate(self, key: tuple[str, str], now: float, immediate: bool = False) -> bool:
        pod = self._pods.get(key)
        if pod is None:
            raise E3Error(f"policy {self.policy.name!r} asked to activate unknown pod {key}")
        node = self._nodes[pod.node]
        if pod.state != INACTIVE or not node.fits(pod.demand):
            self.stats.refused_activations += 1
            return False
        node.reserve(pod.demand)
        self._sync_used(pod.node)
        pod.epoch += 1
        if immediate:
            pod.state = ACTIVE
            self._status[key].active_since_ms = now
        else:
            j = self.spec.activation_jitter
            delay = self.spec.activation_ms[pod.model] * self._activation_rng.uniform(1 - j, 1 + j)
            pod.state, pod.ready_ms = ACTIVATING, now + delay
            pod.activations += 1
            self.stats.activations += 1
            ep = pod.epoch
            self._timers.push(now + delay, lambda: self._activated(pod, ep, delay))
        self._sync(pod)
        return True

    def _activated(self, pod: Pod, ep: int, delay: float) -> None:
        if pod.epoch != ep or pod.state != ACTIVATING:
            return  # stopped before it came up
        pod.state = ACTIVE
        self._status[pod.key].active_since_ms = self.env.now()
        self.obs.activation_ms_observed.append((pod.node, pod.model, delay))
        self._sync(pod)
        self._retry_pending(pod.model)

    def _deactivate(self, key: tuple[str, str], now: float) -> None:
        pod = self._pods.get(key)
        if pod is None:
            raise E3Error(f"policy {self.policy.name!r} asked to deactivate unknown pod {key}")
        if pod.state not in (ACTIVE, ACTIVATING):
            return
        self._advance(pod.node)
        orphans = list(pod.queue)
        pod.queue.clear()
        if pod.in_service is not None:
            self._proc[pod.node].remove(pod.in_service.view.request_id)
            orphans.insert(0, pod.in_service)
            pod.in_service = None
        pod.state = DEACTIVATING
        pod.epoch += 1
        self.stats.deactivations += 1
        ep = pod.epoch
        self._timers.push(now + self.spec.deactivation_ms, lambda: self._deactivated(pod, ep))
        self._sync(pod)
        for r in orphans:
            self._orphan(r)
        self._poke(pod.node)

    def _deactivated(self, pod: Pod, ep: int) -> None:
        if pod.epoch != ep:
            return
        pod.state = INACTIVE
        self._nodes[pod.node].release(pod.demand)
        self._sync_used(pod.node)
        self._sync(pod)

    def _orphan(self, r: _Req) -> None:
        """A request whose pod went away: fail it, or route it again (config ``deactivation``)."""
        if self.spec.deactivation == "fail":
            self._resolve(r, FAILED, self.env.now())
            return
        r.reroutes += 1
        self.stats.reroutes += 1
        self._dispatch(r)

    # --- request flow -----------------------------------------------------------------------------
    def _arrive(self, view: RequestView) -> None:
        now = self.env.now()
        r = _Req(view, now + self.spec.timeout_ms, self._truth.noise(self._noise_rng))
        self._reqs[view.request_id] = r
        self.stats.issued += 1
        self._cur[view.model].arrivals += 1
        self.obs.now_ms = now
        self._dispatch(r)

    def _dispatch(self, r: _Req) -> None:
        node = self.policy.route(r.view, self.obs)
        if node is None:
            self._pending[r.view.model].append(r)
            self.obs.pending[r.view.model] = len(self._pending[r.view.model])
            return
        pod = self._pods.get((node, r.view.model))
        if pod is None or not pod.accepts:
            raise ServingPolicyError(
                f"policy {self.policy.name!r} routed request {r.view.request_id} ({r.view.model}) to {node!r}, "
                f"which has no active pod of it; active: {self.obs.active_pods(r.view.model)}")
        now = self.env.now()
        r.node, r.dispatch_ms = node, now
        r.transit += 1
        delay = self.network.transfer_ms(r.view.ingress, node, r.view.in_bytes)
        if delay > 0:
            tr = r.transit
            self._timers.push(now + delay, lambda: self._deliver(r, pod, tr))
        else:
            self._deliver(r, pod, r.transit)

    def _deliver(self, r: _Req, pod: Pod, tr: int) -> None:
        if r.done or tr != r.transit:
            return
        if not pod.accepts:  # deactivated while the request was on the wire
            self._orphan(r)
            return
        r.enqueue_ms = self.env.now()
        pod.queue.append(r)
        self._sync(pod)
        self._poke(pod.node)

    def _retry_pending(self, model: str) -> None:
        q = self._pending[model]
        if not q or not self.obs.active_pods(model):
            return
        waiting = list(q)
        q.clear()
        for r in waiting:
            if not r.done:
                self._dispatch(r)
        self.obs.pending[model] = len(q)

    # --- node processor ---------------------------------------------------------------------------
    def _advance(self, node: str) -> None:
        now = self.env.now()
        proc = self._proc[node]
        before = proc.busy_ms
        for rid in proc.advance(now):
            r = self._reqs[rid]
            pod = self._pods[(node, r.view.model)]
            pod.in_service = None
            back = self.network.transfer_ms(node, r.view.ingress, r.view.out_bytes)
            end = now + back
            self._resolve(r, SERVED if end <= r.deadline_ms else TIMED_OUT, end)
            self._sync(pod)
        self.stats.busy_ms[node] += proc.busy_ms - before

    def _node_step(self, node: str) -> float | None:
        """Advance the node, start what may start; the time until its next completion or None."""
        self._advance(node)
        now = self.env.now()
        proc = self._proc[node]
        pods = self._node_pods[node]
        while True:
            if self.spec.sharing == "fifo":
                if len(proc) > 0:
                    break
                ready = [p for p in pods if p.state == ACTIVE and p.in_service is None and p.queue]
                if not ready:
                    break
                cand = [min(ready, key=lambda p: p.queue[0].enqueue_ms)]
            else:
                cand = [p for p in pods if p.state == ACTIVE and p.in_service is None and p.queue]
                if not cand:
                    break
            for pod in cand:
                r = pod.queue.popleft()
                if now >= r.deadline_ms:
                    self._resolve(r, TIMED_OUT, now)
                else:
                    work = self._truth.work_ms(node, r.view, r.noise)
                    r.start_ms, r.service_ms = now, work
                    pod.in_service = r
                    proc.add(r.view.request_id, work, now)
                self._sync(pod)
        self.obs.nodes[node].busy_jobs = len(proc)
        return proc.next_completion_ms()

    def _poke(self, node: str) -> None:
        p = self._nodeprocs[node]
        if p.ispassive() or p.isscheduled():
            p.activate()

    # --- resolution -------------------------------------------------------------------------------
    def _resolve(self, r: _Req, outcome: str, end_ms: float) -> None:
        if r.done:
            raise E3Error(f"request {r.view.request_id} resolved twice")
        r.done = True
        v = r.view
        lat = end_ms - v.arrival_ms
        c = self._cur[v.model]
        if outcome == SERVED:
            self.stats.served += 1
            c.served += 1
            c.latency_sum_ms += lat
        elif outcome == TIMED_OUT:
            self.stats.timed_out += 1
            c.timed_out += 1
        else:
            self.stats.failed += 1
            c.failed += 1
        self._resolved += 1
        self.stats.makespan_ms = max(self.stats.makespan_ms, end_ms)
        del self._reqs[v.request_id]
        self._writer.add((v.request_id, v.model, v.ingress, r.node, v.arrival_ms, r.dispatch_ms, r.start_ms,
                          end_ms, r.service_ms, lat, outcome, r.reroutes))
        rec = CompletedRequest(v, r.node, outcome, end_ms, lat)
        self.obs.recent.append(rec)
        self.policy.on_complete(rec, self.obs)

    def _purge_expired(self, now: float) -> None:
        for pod in self._pods.values():
            if pod.queue and any(r.deadline_ms <= now for r in pod.queue):
                keep = deque()
                for r in pod.queue:
                    if r.deadline_ms <= now:
                        self._resolve(r, TIMED_OUT, r.deadline_ms)
                    else:
                        keep.append(r)
                pod.queue = keep
                self._sync(pod)
        for m, q in self._pending.items():
            keep = deque()
            for r in q:
                if r.done:
                    continue
                if r.deadline_ms <= now:
                    self._resolve(r, TIMED_OUT, r.deadline_ms)
                else:
                    keep.append(r)
            self._pending[m] = keep
            self.obs.pending[m] = len(keep)

    # --- slots ------------------------------------------------------------------------------------
    def _slot_tick(self) -> None:
        now = self.env.now()
        obs = self.obs
        obs.now_ms = now
        self._purge_expired(now)
        if self._slot_index > 0:
            obs.last_slot = self._cur
            for m, c in self._cur.items():
                self._epoch_acc[m].add(c)
            self._cur = {m: ModelCounters() for m in self.models}
            if self._slot_index % self.spec.epoch_slots == 0:
                obs.last_epoch = self._epoch_acc
                self._epoch_acc = {m: ModelCounters() for m in self.models}
        obs.slot = self._slot_index
        obs.epoch = self._slot_index // self.spec.epoch_slots
        if self._slot_index == 0:
            for key in self.policy.initial_deployment(obs):
                self._activate(tuple(key), now, immediate=self.spec.initial_active)
        else:
            d = self.policy.on_slot(obs)
            for key in d.deactivate:
                self._deactivate(tuple(key), now)
            for key in d.activate:
                self._activate(tuple(key), now)
        for m in self.models:
            self._retry_pending(m)
        self._slot_index += 1

    def run(self) -> ServingStats:
        """Run until every request is resolved; write the trace. Returns the counters.

        Raises:
            E3Error: conservation violated (a request neither served, timed out nor failed).
        """
        t0 = time.perf_counter()
        self.env = QuietEnvironment(trace=False, random_seed=0, set_numpy_random_seed=False)
        self._slot_index = 0
        self._timers = CallbackTimers(env=self.env, name="timers")
        self._nodeprocs = {n: _NodeProc(env=self.env, model=self, node=n, name=f"node.{n}") for n in self._nodes}
        with RowTraceWriter(self.trace_path, schema=TRACE_SCHEMA) as w:
            self._writer = w
            _SlotProc(env=self.env, model=self, name="slots")
            _ArrivalProc(env=self.env, model=self, requests=self._requests, name="arrivals")
            self.env.run()
        s = self.stats
        if self._reqs or s.served + s.timed_out + s.failed != s.issued:
            raise E3Error(f"conservation violated: issued {s.issued}, served {s.served}, timed out "
                          f"{s.timed_out}, failed {s.failed}, {len(self._reqs)} unresolved")
        s.wall_s = time.perf_counter() - t0
        return s
