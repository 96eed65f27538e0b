"""Agent placement and migration engine: LLM agents on edge servers, chained tasks, migration.

Built for the third seed system (AntLLM, arXiv 2508.03345; what is known of it and the defaults
chosen: docs/placement.md) from the kernel primitives :class:`e3.sim.nodes.Node`
(multi-dimensional capacity: memory, compute, storage, bandwidth) and
:class:`e3.sim.network.Network` (``RTT/2 + bytes/bandwidth``). It runs on salabim, as the other
two engines do: every event is a callback of the kernel's :class:`e3.sim.components.CallbackTimers`
on a :class:`e3.sim.components.QuietEnvironment`, in (time, push order), which keeps it
deterministic (issue 32: it had its own heap loop; the results are byte-identical).

Model (simulated ms):

* Each server runs one LLM serving engine: a FIFO queue, one step in service at a time, service
  from the caller's ``service_ms(server, step)`` (Eq. 1 on the server's device priors, noise).
* An agent reserves its demand vector on its server. At t = 0 it starts (start-up delay:
  ``init_warm_ms`` if its image kind is cached on the server, else ``init_pull_ms``, plus its state
  sent from the owner's access server); it serves nothing before it is ready.
* A task runs its owner's chain: the input file goes from the user's access server to the first
  agent's server; each step is served by the agent's current server; a message goes to the next
  agent's server; the answer returns to the user's access server at that time.
* Migration (controller decision): the target reserves the demand at once (if it does not fit
  yet, the move waits until another agent's cut-over frees room or the next decision replaces it;
  counted as refused then), the agent stops taking
  steps (queued ones wait with it, a step in service finishes first), the state (``light``) or the
  runtime image plus state (``heavy``) crosses the network, the agent initialises on the target
  (warm if its image is cached there or was moved, else pulled), and at cut-over the source is
  released and the waiting steps are forwarded. An agent never serves mid-migration.
* Servers may leave (their agents are evacuated through the controller, then the server is down)
  and return (empty, image cache cleared). Agents that cannot be evacuated (no room anywhere) are
  stranded (``outage: strand``): the server goes down on time, their steps wait, and they resume
  when it returns; ``keep_serving`` (0.2.0) lets the server stay up and serve.

Control: ``controller.initial(obs)`` returns the t = 0 assignment (every agent); ``controller.
decide(obs, reason, user)`` returns ``{agent: server}`` changes, called every ``epoch_ms``
(``reason="epoch"``), on every user move (``"region"`` change or intra-region ``"handover"``, with
the user) and when a server leaves
(``"server_leave"``). The controller holds a :class:`PlacementObservation`, never the engine.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import salabim as sim

from e3.errors import E3Error
from e3.placement.mobility import Move
from e3.sim.components import CallbackTimers, QuietEnvironment
from e3.sim.network import Network
from e3.sim.nodes import Node

sim.yieldless(False)  # generator processes, as the other engines (e3.sim.engine)

READY, STARTING, MIGRATING, STRANDED = "ready", "starting", "migrating", "stranded"
#: What happens to agents a leaving server cannot shed (no other server has room): ``strand`` (the
#: server goes down on time and they serve nothing until it returns; issue 33, defect 5) or
#: ``keep_serving`` (0.2.0: the server silently stays up and serves).
OUTAGE_MODES = ("strand", "keep_serving")


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """An LLM agent: ``owner`` user index, image ``kind``, ``demand`` per capacity dimension,
    ``state_bytes`` (memory + config, moved by light migration), ``image_bytes`` (full runtime)."""

    name: str
    owner: int
    kind: str
    demand: dict[str, float]
    state_bytes: float
    image_bytes: float


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One chain step: the agent (index) and the LLM call's tokens and service noise factor."""

    agent: int
    input_tokens: int
    output_tokens: int
    noise: float


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A task of ``user`` arriving at ``arrival_ms`` with its ``steps``, input file size and deadline."""

    task_id: int
    user: int
    arrival_ms: float
    steps: tuple[StepSpec, ...]
    input_bytes: float
    message_bytes: float
    deadline_ms: float


@dataclass(frozen=True)
class PlacementObservation:
    """What a controller sees: time, placement (a migrating agent counts at its target), agent
    states, server status and reservations, users' regions and access servers."""

    now_ms: float
    assignment: tuple[str, ...]
    agent_state: tuple[str, ...]
    up: dict[str, bool]
    used: dict[str, dict[str, float]]
    user_region: tuple[str, ...]
    user_access: tuple[str, ...]


class PlacementController(Protocol):
    """The placement/migration policy interface (see module docstring)."""

    def initial(self, obs: PlacementObservation) -> list[str]: ...

    def decide(self, obs: PlacementObservation, reason: str, user: int | None) -> dict[int, str]: ...


@dataclass
class PlacementStats:
    """Outcomes of one run (lists of dict records, counters, time-weighted utilisation)."""

    tasks: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    migrations: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    refused_migrations: int = 0
    evacuation_failures: int = 0
    stranded_agents: int = 0       # agents left on a server when it went down (outage: strand)
    stranded_agent_s: float = 0.0  # summed time those agents spent down (s)
    decisions: int = 0
    controller_wall_s: float = 0.0
    deploy_wall_s: float = 0.0
    busy_ms: dict[str, float] = field(default_factory=dict)
    max_used: dict[str, dict[str, float]] = field(default_factory=dict)
    epoch_samples: list[dict[str, Any]] = field(default_factory=list)
    makespan_ms: float = 0.0


class _Agent:
    __slots__ = ("server", "state", "waiting", "pending", "busy", "target")

    def __init__(self, server: str) -> None:
        self.server = server
        self.target: str | None = None
        self.state = STARTING
        self.waiting: list[tuple[int, int, str, float]] = []  # (task, step, from server, bytes)
        self.pending: tuple[str, float] | None = None  # migration asked while a step is in service
        self.busy = False


class PlacementSimulation:
    """One run of the placement engine.

    Args:
        servers: nodes with capacity dims (e.g. memory_gb, compute, storage_gb, bandwidth_mbps).
        regions: server -> region; ``access_points``: region -> its servers in cell order.
        network: delays between servers.
        agents: the agents; ``tasks``: arrivals sorted by time; ``moves``: user moves by time.
        user_start: per user ``(region, cell)`` at t = 0.
        service_ms: ``(server, step) -> ms`` of exclusive service.
        controller: the policy; ``migration``: ``light`` or ``heavy``.
        init_warm_ms / init_pull_ms: agent start-up with the image cached / pulled.
        epoch_ms: EAM decision period; ``horizon_ms``: no arrivals after it (the run drains).
        server_events: ``(t_ms, server, "leave"|"return")``.
        cost: ``price_per_gb``, ``price_per_s`` of migration; ``weights`` per dimension.

    Raises:
        E3Error: an initial assignment that is incomplete, names an unknown server or does not fit.
    """

    def __init__(self, servers: list[Node], regions: dict[str, str], access_points: dict[str, list[str]],
                 network: Network, agents: list[AgentSpec], tasks: list[TaskSpec], moves: list[Move],
                 user_start: list[tuple[str, int]], service_ms: Callable[[str, StepSpec], float],
                 controller: PlacementController, migration: str, init_warm_ms: float, init_pull_ms: float,
                 epoch_ms: float, horizon_ms: float, server_events: list[tuple[float, str, str]],
                 cost: dict[str, Any], outage: str = "strand") -> None:
        if migration not in ("light", "heavy"):
            raise E3Error(f"migration must be 'light' or 'heavy' (value: {migration!r})")
        if outage not in OUTAGE_MODES:
            raise E3Error(f"outage must be one of {list(OUTAGE_MODES)} (value: {outage!r})")
        self.outage = outage
        self.stranded: dict[str, tuple[float, list[int]]] = {}  # down server -> (since ms, agents left on it)
        self.nodes = {n.name: n for n in servers}
        self.names = [n.name for n in servers]
        self.regions, self.access_points, self.net = regions, access_points, network
        self.agents, self.tasks, self.moves = agents, tasks, moves
        self.service_ms, self.controller, self.migration = service_ms, controller, migration
        self.init_warm_ms, self.init_pull_ms = init_warm_ms, init_pull_ms
        self.epoch_ms, self.horizon_ms, self.server_events, self.cost = epoch_ms, horizon_ms, server_events, cost
        self.user_region = [r for r, _ in user_start]
        self.user_cell = [c for _, c in user_start]
        self.up = {n: True for n in self.names}
        self.leaving: set[str] = set()
        self.cache: dict[str, set[str]] = {n: set() for n in self.names}
        self.queue: dict[str, deque] = {n: deque() for n in self.names}
        self.serving: dict[str, bool] = {n: False for n in self.names}
        self.state: list[_Agent] = []
        self.stats = PlacementStats(busy_ms={n: 0.0 for n in self.names},
                                    max_used={n: dict(self.nodes[n].used) for n in self.names})
        self.env = None  # the salabim environment of the run (run)
        self._timers = None
        self._pending: list[tuple] = []  # events pushed before the environment exists
        self.deferred: dict[int, str] = {}  # agent -> target that did not fit yet

    # --- event loop --------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        """Simulated time (ms): the salabim environment's clock (0 before the run)."""
        return self.env.now() if self.env is not None else 0.0

    def _at(self, t: float, fn: Callable, *args) -> None:
        if self._timers is None:
            self._pending.append((t, fn, args))
        else:
            self._timers.push(t, fn, *args)

    def access(self, user: int) -> str:
        """The user's current access server."""
        return self.access_points[self.user_region[user]][self.user_cell[user]]

    def observation(self) -> PlacementObservation:
        """A snapshot for the controller."""
        return PlacementObservation(
            self.now, tuple(a.target or a.server for a in self.state), tuple(a.state for a in self.state),
            {n: self.up[n] and n not in self.leaving for n in self.names},
            {n: dict(self.nodes[n].used) for n in self.names},
            tuple(self.user_region), tuple(self.access(u) for u in range(len(self.user_region))))

    def _note_used(self, server: str) -> None:
        mu = self.stats.max_used[server]
        for d, v in self.nodes[server].used.items():
            if v > mu[d]:
                mu[d] = v

    def _ask(self, reason: str, user: int | None) -> dict[int, str]:
        t0 = time.perf_counter()
        out = self.controller.decide(self.observation(), reason, user)
        self.stats.controller_wall_s += time.perf_counter() - t0
        self.stats.decisions += 1
        return out

    # --- deployment (EAD) --------------------------------------------------------------------------
    def _deploy(self) -> None:
        t0 = time.perf_counter()
        assign = list(self.controller.initial(self.observation()))
        self.stats.deploy_wall_s = time.perf_counter() - t0
        if len(assign) != len(self.agents):
            raise E3Error(f"initial placement names {len(assign)} servers for {len(self.agents)} agents")
        for i, (ag, s) in enumerate(zip(self.agents, assign, strict=True)):
            if s not in self.nodes:
                raise E3Error(f"initial placement: agent {ag.name!r} on unknown server {s!r}")
            self.nodes[s].reserve(ag.demand)  # raises CapacityError when it does not fit
            self._note_used(s)
            warm = ag.kind in self.cache[s]
            self.cache[s].add(ag.kind)
            src = self.access(ag.owner)
            delay = (self.init_warm_ms if warm else self.init_pull_ms) + self.net.transfer_ms(src, s, ag.state_bytes)
            a = _Agent(s)
            self.state.append(a)
            self.stats.deployments.append({"agent": i, "server": s, "startup_ms": delay, "warm": warm})
            self._at(delay, self._ready, i)

    def _ready(self, i: int) -> None:
        a = self.state[i]
        if a.server in self.stranded:  # started on a server that went down meanwhile
            a.state = STRANDED
            self.stranded[a.server][1].append(i)
            self.stats.stranded_agents += 1
            return
        a.state = READY
        self._flush(i)

    # --- task flow ---------------------------------------------------------------------------------
    def _arrive(self, k: int) -> None:
        t = self.tasks[k]
        self._send(k, 0, self.access(t.user), t.input_bytes)

    def _send(self, k: int, j: int, src: str, n_bytes: float) -> None:
        i = self.tasks[k].steps[j].agent
        a = self.state[i]
        if a.state != READY or a.pending is not None:
            a.waiting.append((k, j, src, n_bytes))
            return
        self._at(self.now + self.net.transfer_ms(src, a.server, n_bytes), self._land, k, j, a.server)

    def _land(self, k: int, j: int, server: str) -> None:
        i = self.tasks[k].steps[j].agent
        a = self.state[i]
        if a.state != READY or a.server != server or a.pending is not None:
            a.waiting.append((k, j, server, 0.0))  # already here: forwarded with the agent
            return
        self.queue[server].append((k, j, self.now))
        self._serve(server)

    def _serve(self, server: str) -> None:
        if self.serving[server] or not self.queue[server] or server in self.stranded:
            return
        k, j, t_in = self.queue[server].popleft()
        step = self.tasks[k].steps[j]
        a = self.state[step.agent]
        if a.state != READY or a.server != server:  # cannot happen: migration pulls queued steps
            raise E3Error(f"step of task {k} queued at {server} for agent {step.agent} in state {a.state}")
        svc = self.service_ms(server, step)
        self.serving[server] = True
        a.busy = True
        self.stats.busy_ms[server] += svc
        self.stats.steps.append({"task": k, "step": j, "agent": step.agent, "server": server, "queued_ms": t_in,
                                 "start_ms": self.now, "end_ms": self.now + svc})
        self._at(self.now + svc, self._done, k, j, server)

    def _done(self, k: int, j: int, server: str) -> None:
        t = self.tasks[k]
        i = t.steps[j].agent
        a = self.state[i]
        a.busy = False
        self.serving[server] = False
        if a.pending is not None:
            target, _ = a.pending
            a.pending = None
            self._start_migration(i, target)
        if j + 1 < len(t.steps):
            self._send(k, j + 1, server, t.message_bytes)
        else:
            back = self.access(t.user)
            self._at(self.now + self.net.transfer_ms(server, back, t.message_bytes), self._finish, k)
        self._serve(server)

    def _finish(self, k: int) -> None:
        t = self.tasks[k]
        lat = self.now - t.arrival_ms
        self.stats.tasks.append({"task": k, "user": t.user, "arrival_ms": t.arrival_ms, "end_ms": self.now,
                                 "latency_ms": lat, "deadline_ms": t.deadline_ms, "met": lat <= t.deadline_ms,
                                 "steps": len(t.steps)})

    def _flush(self, i: int) -> None:
        a = self.state[i]
        waiting, a.waiting = a.waiting, []
        for k, j, src, n_bytes in waiting:
            self._send(k, j, src, n_bytes)

    # --- migration (EAM) ---------------------------------------------------------------------------
    def _apply(self, changes: dict[int, str], retry: bool = False) -> None:
        if not retry:  # a new decision replaces the moves still waiting for room
            self.stats.refused_migrations += len(self.deferred)
            self.deferred = {}
        for i in sorted(changes):
            target = changes[i]
            a = self.state[i]
            if target not in self.nodes:
                raise E3Error(f"controller moved agent {i} to unknown server {target!r}")
            if target == a.server or a.state != READY or a.pending is not None:
                continue
            if not self.up[target] or target in self.leaving:
                self.stats.refused_migrations += 1
                continue
            if not self.nodes[target].fits(self.agents[i].demand):
                # room may free when other agents cut over (make-before-break): wait for it
                self.deferred[i] = target
                continue
            self.deferred.pop(i, None)
            self.nodes[target].reserve(self.agents[i].demand)
            self._note_used(target)
            a.target = target
            if a.busy:
                a.pending = (target, self.now)
            else:
                self._start_migration(i, target)

    def _start_migration(self, i: int, target: str) -> None:
        ag, a = self.agents[i], self.state[i]
        src = a.server
        a.state = MIGRATING
        kept = deque()
        for item in self.queue[src]:  # queued steps leave with the agent
            k, j, _ = item
            if self.tasks[k].steps[j].agent == i:
                a.waiting.append((k, j, src, 0.0))
            else:
                kept.append(item)
        self.queue[src] = kept
        moved = ag.state_bytes + (ag.image_bytes if self.migration == "heavy" else 0.0)
        warm = self.migration == "heavy" or ag.kind in self.cache[target]
        # spec: RTT (handshake) + bytes / bandwidth + initialisation on the target
        dur = self.net.rtt_ms(src, target) + 8.0 * moved / self.net.bandwidth_bps * 1000.0 \
            + (self.init_warm_ms if warm else self.init_pull_ms)
        rec = {"agent": i, "src": src, "dst": target, "start_ms": self.now, "end_ms": self.now + dur,
               "bytes": moved, "downtime_ms": dur, "warm": warm, "kind": self.migration}
        rec["cost"] = moved / 1e9 * self.cost["price_per_gb"] + dur / 1000.0 * self.cost["price_per_s"]
        self.stats.migrations.append(rec)
        self._at(self.now + dur, self._cutover, i, src, target)

    def _cutover(self, i: int, src: str, target: str) -> None:
        a = self.state[i]
        self.nodes[src].release(self.agents[i].demand)
        self.cache[target].add(self.agents[i].kind)
        a.server, a.target, a.state = target, None, READY
        self._flush(i)
        self._serve(src)
        if self.deferred:
            self._apply(dict(self.deferred), retry=True)
        if src in self.leaving:
            self._try_down(src)

    # --- mobility, epochs, churn -------------------------------------------------------------------
    def _move(self, m: Move) -> None:
        self.user_region[m.user] = m.region
        self.user_cell[m.user] = m.cell
        self._apply(self._ask(m.kind, m.user))

    def _epoch(self) -> None:
        self._sample()
        self._apply(self._ask("epoch", None))
        if self.now + self.epoch_ms < self.horizon_ms:
            self._at(self.now + self.epoch_ms, self._epoch)

    def _sample(self) -> None:
        self.stats.epoch_samples.append({"t_ms": self.now, "used": {n: dict(self.nodes[n].used) for n in self.names},
                                         "up": dict(self.up)})

    def _server_event(self, server: str, what: str) -> None:
        if what == "return":
            self.leaving.discard(server)
            self.up[server] = True
            self.cache[server] = set()
            if server in self.stranded:  # its stranded agents resume where they were
                since, ids = self.stranded.pop(server)
                self.stats.stranded_agent_s += len(ids) * (self.now - since) / 1000.0
                for i in ids:
                    self.state[i].state = READY
                    self.cache[server].add(self.agents[i].kind)
                for i in ids:
                    self._flush(i)
                self._serve(server)
            return
        self.leaving.add(server)
        changes = self._ask("server_leave", None)
        self._apply(changes)
        for i, a in enumerate(self.state):  # what the controller left behind: nearest feasible server
            if a.server == server and a.target is None and a.state == READY and a.pending is None:
                home = self.access(self.agents[i].owner)
                ok = [s for s in self.names if self.up[s] and s not in self.leaving
                      and self.nodes[s].fits(self.agents[i].demand)]
                if not ok:
                    self.stats.evacuation_failures += 1
                    continue
                self._apply({i: min(ok, key=lambda s: (self.net.rtt_ms(home, s), s))})
        if self.outage == "strand":
            left = [i for i, a in enumerate(self.state)
                    if a.server == server and a.target is None and a.pending is None and a.state in (READY, STARTING)]
            if left:  # no room anywhere: the server goes down on time with them
                for i in left:
                    if self.state[i].state == READY:
                        self.state[i].state = STRANDED
                ready = [i for i in left if self.state[i].state == STRANDED]
                self.stranded[server] = (self.now, ready)  # a starting one joins when it is ready
                self.stats.stranded_agents += len(ready)
                self.up[server] = False
                return
        self._try_down(server)

    def _try_down(self, server: str) -> None:
        if any(a.server == server for a in self.state):
            return  # agents still there (migrating away, or no room elsewhere): it stays up
        self.up[server] = False
        self.leaving.discard(server)

    def run(self) -> PlacementStats:
        """Deploy, run every arrival, move, epoch and server event, drain; return the stats."""
        self._deploy()
        for k, t in enumerate(self.tasks):
            self._at(t.arrival_ms, self._arrive, k)
        for m in self.moves:
            self._at(m.t_ms, self._move, m)
        for t_ms, s, what in self.server_events:
            if s not in self.nodes:
                raise E3Error(f"server event names unknown server {s!r}")
            self._at(t_ms, self._server_event, s, what)
        self._at(self.epoch_ms, self._epoch)
        self.env = QuietEnvironment(trace=False, random_seed=0, set_numpy_random_seed=False)
        self._timers = CallbackTimers(env=self.env, name="timers")
        for t, fn, args in self._pending:  # in push order: deployment events first, then arrivals, ...
            self._timers.push(t, fn, *args)
        self._pending = []
        self.env.run()
        self.stats.makespan_ms = self.now
        return self.stats
