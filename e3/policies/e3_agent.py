"""E3-Agent: SECT fast path driven by the Online Performance Model, with an event-driven
meta-controller hook (paper sections 3.3-3.7, Eq. 6, Table 4)."""

from __future__ import annotations

import numpy as np

from e3.agent.control import ControlSurface, RouterState
from e3.agent.controllers import Controller, get_controller
from e3.agent.opm import OnlinePerformanceModel
from e3.agent.triggers import Trigger, TriggerGate
from e3.errors import ConfigError
from e3.policies.base import Policy, register
from e3.sim import backlog
from e3.sim.backlog import PoolBacklog


@register
class E3Agent(Policy):
    """E3-Agent's fast path and slow path.

    Fast path, for every task (Eq. 6)::

        score_d = backlog_d + predicted_service_d - explore_weight_ms * u_d + risk_penalty_ms * risky_d

    over the available devices of the task's kind, where the backlog and the prediction come from
    the OPM and ``u_d`` is its uncertainty. Hard avoidance: while a non-risky device is feasible,
    risky ones are not considered; when all are risky, route anyway with the penalty.
    The ``explore_risk`` router (used during the warmup budget) first sends a task to a feasible,
    non-risky device with fewer than ``explore_min_samples`` observations (fewest first), else
    uses the SECT score.

    Slow path: during the warmup budget the OPM refits every ``warmup_refit_every_tasks``
    completions with minimum one sample (every device, or with ``warmup_refit_scope: observed``
    only those with completions since the previous warmup refit), and the router switches to
    ``sect`` when the budget ends (``router_after_warmup``: ``switch_once``, the default,
    switches once and lets a controller's later ``switch_router`` hold, as Table 2 makes it a
    tool; ``force_sect`` re-applies the switch at every later arrival, so a controller's switch
    lasts until the next arrival).

    After warmup (release 0.2.0, issue 28; section 3.4: the profile is "updated online during
    warmup and after detected drift") the OPM updates a device only in a *recalibration period*
    after a regime boundary: a drift or residual alarm (``recalibrate_after_alarm``), a return
    from churn, a re-probe, or a controller's ``update_calibration``. The boundary restarts the
    device's window (:meth:`~e3.agent.opm.OnlinePerformanceModel.restart_window`), so later
    refits fit only samples from after it and an action cannot be undone by a refit of older
    samples; the device is refitted at each of its completions until its window is full again.
    ``steady_refit_every_tasks: 5`` is section 3.7's reading (0.1.0's default): a refit of the
    whole window every 5 completions, on top. Re-probing (``reprobe_after_tasks``): once per that
    many arrivals of a kind, the non-risky device that has gone longest without a task (at least
    that long) gets ``reprobe_tasks`` tasks, so a recovery nobody routes to is seen.

    Triggers (annotations, drift and residual alarms, warmup intervention points) pass a
    cooldown gate and then go to the configured controller (``rules``, ``none``, ...), which acts
    through the ControlSurface tools. The non-event trigger gap is per device by default
    (``nonevent_gap_per_device``; False: one gap for the pool); warmup intervention points are a
    fixed schedule exempt from the gap and the cooldown (``warmup_points_obey_gap``). Churn is
    state hygiene (section 3.7), not a controller call (``churn_triggers``): a returning device's
    window is cleared and a recalibration period opened. Every 0.1.0 behaviour is a parameter
    value; ``config/variants/v0.1.yaml`` sets them all.
    """

    name = "e3"
    parameters = {
        "controller": "rules",
        "explore_weight_ms": 2000.0,          # Table 4
        "risk_penalty_ms": 60000.0,           # Table 4
        "risk_ttl_tasks": 50,                 # Table 4
        "warmup_refit_every_tasks": 5,        # Table 4
        "warmup_min_samples": 1,              # Table 4
        # "all": each warmup refit refits every device (Table 4's reading, the default); "observed":
        # only devices with completions since the previous warmup refit. A refit of an unchanged
        # window repeats the same fit (up to the rounding of the one-sample rescaling path), and
        # "all" costs O(pool) refits every few tasks, which dominates pools of ~1,000 devices.
        "warmup_refit_scope": "all",
        "warmup_intervention_fractions": [0.34, 0.67],
        "explore_min_samples": 2,
        # Section 3.4's reading (issue 28; 0.2.0): after warmup the OPM refits a device only in a
        # recalibration period after a regime boundary ("updated online during warmup and after
        # detected drift"). 5: section 3.7's reading, the 0.1.0 default (a refit every 5
        # completions, which undid every calibration a controller set).
        "steady_refit_every_tasks": None,
        # Section 3.4 "after detected drift": a drift or residual alarm restarts the device's
        # window and opens a recalibration period (refits at each of its completions until the
        # window is full again). False: 0.1.0 (no OPM update after an alarm but the steady one).
        "recalibrate_after_alarm": True,
        # Tools whose effect later refits cannot undo (ControlSurface.persistent_actions; 0.1.0: False).
        "persistent_actions": True,
        # (C) Re-probing (issue 28): once per this many arrivals of a kind, the available, non-risky
        # device of that kind that has gone longest without a task, if that is at least this many
        # arrivals, gets the next ``reprobe_tasks`` tasks of its kind, with its window restarted and
        # a recalibration period of minimum one sample (Table 4's rapid fitting), so one probe
        # re-scales the estimate of a device that recovered while no traffic reached it. 50 =
        # Table 4's risk TTL (the paper's horizon for a stale override); 1 task: the cheapest probe
        # that can move the estimate. None: no probes (0.1.0). Cost: at most reprobe_tasks /
        # reprobe_after_tasks of a kind's tasks (2 %) go to devices the router would not pick.
        "reprobe_after_tasks": 50,
        "reprobe_tasks": 1,
        # Section 3.7: "Device churn dynamics are handled by state hygiene rules"; section 3.5 lists
        # no churn trigger. False (0.2.0): a leave or return does not call the controller; a return
        # restarts the device's statistics (mark_stale) and opens a recalibration period. True: 0.1.0.
        "churn_triggers": False,
        # Section 3.5: "a small number of warmup intervention points"; "non-event invocations obey a
        # minimum task-count gap" and "repeated triggers are suppressed by a signature-based
        # cooldown". False (0.2.0): the points are a fixed, bounded schedule that fires each point
        # once, exempt from the gap and the cooldown (at budget 30 both swallowed the point at
        # task 20 in every run). True: 0.1.0, the points obey both like alarms.
        "warmup_points_obey_gap": False,
        "opm_window_tasks": 30,
        "opm_min_samples": 2,
        "calibration_smoothing": 0.3,         # Table 4
        "drift_threshold": 1.3,               # Table 4
        "drift_window_s": 60.0,               # Table 4
        "alarm_min_samples": 3,
        "anomaly_cooldown_tasks": 20,         # Table 4
        "min_nonevent_gap_tasks": 20,         # Table 4
        # Readings of the paper kept as options (docs/choices.md, "Open readings"); the defaults are the
        # better-supported reading: per-device non-event gap, a controller's router switch holds.
        "nonevent_gap_per_device": True,      # section 3.5 (False: one gap for the pool)
        "router_after_warmup": "switch_once",  # Table 2 (or "force_sect")
        # False: risky devices stay candidates with risk_penalty_ms added to their score (the
        # soft-penalty frontier of the operating-point study); True: hard avoidance (section 3.3)
        "hard_avoidance": True,
    }

    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        p = self.params
        self.opm = self.make_opm()
        self.router = RouterState("explore_risk" if self.warmup_budget_tasks > 0 else "sect",
                                  p["explore_weight_ms"], p["risk_penalty_ms"])
        if p["warmup_refit_scope"] not in ("all", "observed"):
            raise ConfigError(f"policies.{self.name}.warmup_refit_scope: {p['warmup_refit_scope']!r} is not "
                              "'all' or 'observed'")
        self._warmup_observed: set[str] = set()  # devices with completions since the last warmup refit
        if p["router_after_warmup"] not in ("force_sect", "switch_once"):
            raise ConfigError(f"policies.{self.name}.router_after_warmup: {p['router_after_warmup']!r} is not "
                              "'force_sect' or 'switch_once'")
        self.gate = TriggerGate(p["anomaly_cooldown_tasks"], p["min_nonevent_gap_tasks"], p["nonevent_gap_per_device"])
        ctl_cls = get_controller(p["controller"])
        seeded = {"run_seed": self.rng.getrandbits(32)} if "run_seed" in ctl_cls.parameters else {}
        self.controller = ctl_cls(
            {"drift_window_s": p["drift_window_s"], "refit_window_tasks": p["opm_window_tasks"],
             **self.controllers.get(p["controller"], {}), **seeded})
        self._warmup_switched = False
        self._reprobe_after = p["reprobe_after_tasks"]
        if self._reprobe_after is not None and (self._reprobe_after < 1 or p["reprobe_tasks"] < 1):
            raise ConfigError(f"policies.{self.name}: reprobe_after_tasks ({self._reprobe_after!r}) and "
                              f"reprobe_tasks ({p['reprobe_tasks']!r}) must be >= 1 (or reprobe_after_tasks null)")
        self._last_dispatch: dict[str, int] = {}  # device -> arrival index of its last task
        self._kind_arrivals: dict[str, int] = {}  # kind -> arrivals after warmup
        self._last_probe: dict[str, int] = {}  # kind -> its arrival count at the last probe check
        self._probing: dict[str, tuple[str, int]] = {}  # kind -> (device, probe tasks still to send)
        self.probes = 0
        self.recalibrations = 0
        self.tools: ControlSurface | None = None
        self._backlog: PoolBacklog | None = None  # built at the first vectorised choice
        self._u: dict[str, np.ndarray] = {}  # kind -> OPM uncertainty per device, in pool order
        self._scored_changed: set[str] = set()  # devices whose estimate changed since last scored
        self._completions = 0
        self._steady_dirty: set[str] = set()  # devices with completions since their last steady refit
        # device -> calibration at its last steady refit (a tool may set it in between)
        self._steady_calibration = {d: e.calibration for d, e in self.opm.est.items()}
        self._steady_written = self.opm.subscribe()  # estimates written since the last steady refit
        self._warmup_points = sorted({round(f * self.warmup_budget_tasks) for f in p["warmup_intervention_fractions"]
                                      if 0 < round(f * self.warmup_budget_tasks) < self.warmup_budget_tasks})
        self.triggers_seen = 0
        # Fast-path shortcuts (same results): the SECT score evaluates the OPM's Eq. 1 / Eq. 2
        # directly unless a subclass's OPM predicts otherwise, and the per-completion residual is
        # only handed to controllers that override the no-op ``observe``.
        self._opm_eq = type(self.opm).predict_ms is OnlinePerformanceModel.predict_ms
        self._controller_observes = type(self.controller).observe is not Controller.observe

    def make_opm(self) -> OnlinePerformanceModel:
        """The Online Performance Model (subclasses swap in a variant, e.g. ``e3_rls``)."""
        p = self.params
        return OnlinePerformanceModel(self.pool, p["opm_window_tasks"], p["calibration_smoothing"],
                                      p["opm_min_samples"])

    # --- plumbing ------------------------------------------------------------------------------
    def _tools(self, obs) -> ControlSurface:
        if self.tools is None:
            self.tools = ControlSurface(self.router, self.opm, obs, self.params["risk_ttl_tasks"], self.audit_sink,
                                        self.params["calibration_smoothing"], self.params["persistent_actions"])
        return self.tools

    def _fire(self, trig: Trigger, obs) -> None:
        self.triggers_seen += 1
        scheduled = trig.type == "warmup_point" and not self.params["warmup_points_obey_gap"]
        if self.gate.admit(trig, scheduled=scheduled):
            tools = self._tools(obs)
            tools.caller = f"{self.controller.name}:{trig.type}"
            tools.focus = trig.device or None
            self.controller.handle(trig, tools)

    def _in_warmup(self, obs) -> bool:
        return obs.task_index < self.warmup_budget_tasks

    # --- fast path -----------------------------------------------------------------------------
    def choose(self, task, obs):
        if self._reprobe_after is None:
            return self._route(task, obs)
        k = obs.task_index
        pick = self._probe(task, obs, k) if k >= self.warmup_budget_tasks else None
        if pick is None:
            pick = self._route(task, obs)
        else:
            self.decisions += 1
        self._last_dispatch[pick] = k
        return pick

    def _probe(self, task, obs, k: int) -> str | None:
        """The re-probe of :attr:`parameters` ``reprobe_after_tasks``: the device this task is sent
        to as a probe, or None. O(1) but once per ``reprobe_after_tasks`` arrivals of a kind."""
        kind = task.kind
        router = self.router
        arrivals = self._kind_arrivals[kind] = self._kind_arrivals.get(kind, 0) + 1
        current = self._probing.get(kind)
        if current is not None:
            device, left = current
            if left > 1:
                self._probing[kind] = (device, left - 1)
            else:
                del self._probing[kind]
            st = obs.devices.get(device)
            if st is not None and st.available and not router.is_risky(device, k):
                return device
            self._probing.pop(kind, None)  # left or became risky: the probe ends
        after = self._reprobe_after
        if arrivals - self._last_probe.get(kind, 0) < after:
            return None
        self._last_probe[kind] = arrivals
        last = self._last_dispatch
        stalest, age = None, after - 1
        for d in obs.feasible(kind):
            a = k - last.get(d.name, self.warmup_budget_tasks)
            if a > age and not router.is_risky(d.name, k):
                stalest, age = d.name, a
        if stalest is None:
            return None
        self.probes += 1
        self.opm.restart_window(stalest)  # its old samples may describe a regime that has ended
        self.opm.open_recalibration(stalest, min_samples=1)
        if self.params["reprobe_tasks"] > 1:
            self._probing[kind] = (stalest, self.params["reprobe_tasks"] - 1)
        return stalest

    def _route(self, task, obs):
        self.decisions += 1
        k = obs.task_index
        self.router.expire(k)
        if k >= self.warmup_budget_tasks and not self._warmup_switched:
            # the warmup budget is spent: "force_sect" also undoes a controller's later switch
            # to explore_risk at every arrival; "switch_once" switches here once only
            if self.router.router == "explore_risk":
                self.router.router = "sect"
            self._warmup_switched = self.params["router_after_warmup"] == "switch_once"
        if self._warmup_points and k == self._warmup_points[0]:
            self._warmup_points.pop(0)
            self._fire(Trigger("warmup_point", k), obs)
        feas = obs.feasible(task.kind)
        router = self.router
        hard = self.params["hard_avoidance"]
        if self._opm_eq and len(feas) >= backlog.VECTOR_MIN_DEVICES:  # the loops below over arrays
            if router.router == "explore_risk":
                pick = self._explore_vectorised(task, obs, k, hard, self.params["explore_min_samples"])
                if pick is not None:
                    return pick
            return self._choose_vectorised(task, obs, k, hard, router.explore_weight_ms, router.risk_penalty_ms)
        # Without any risk override no device is risky.
        safe = [d for d in feas if not router.is_risky(d.name, k)] if router.risky_until else feas
        cands = (safe or feas) if hard else feas
        opm = self.opm
        predict = opm.predict_ms
        if router.router == "explore_risk":
            need = self.params["explore_min_samples"]
            under = [d for d in cands if opm.n_window(d.name) < need]
            if under:
                return min(under, key=lambda d: (opm.n_window(d.name), obs.backlog_ms(d, predict))).name
        w, pen = router.explore_weight_ms, router.risk_penalty_ms
        best, best_score = None, 0.0
        est = opm.est
        for d in cands:
            if self._opm_eq:  # = obs.backlog_ms(d, predict) + predict(d.name, task), inlined
                e = est[d.name]
                s = obs.expected_completion_ms(d, task, e.calibration, e.kind, e.alpha, e.beta, e.c) - w * e.uncertainty
            else:
                s = obs.backlog_ms(d, predict) + predict(d.name, task) - w * opm.uncertainty(d.name)
            if not safe or not hard:
                s += pen * router.is_risky(d.name, k)
            if best is None or s < best_score:
                best, best_score = d, s
        return best.name

    def _arrays(self, obs) -> PoolBacklog:
        # The pool's backlog arrays with every device's OPM predictor, uncertainty and window size
        # brought up to date: O(devices changed since the last call).
        pb = self._backlog
        if pb is None or pb.obs is not obs:
            pb = self._backlog = PoolBacklog(obs)
            kinds = {e.kind for e in self.opm.est.values()}
            self._u = {kind: np.ones(len(pb.devices(kind))) for kind in kinds}
            self._n_window = {kind: np.zeros(len(pb.devices(kind)), dtype=np.int64) for kind in kinds}
            self._scored_changed = self.opm.subscribe()
            self._windows_changed = self.opm.subscribe_windows()
        changed = self._scored_changed
        if changed:
            est = self.opm.est
            for d in changed:
                e = est[d]
                pb.set_predictor(d, e.kind, e.calibration, e.alpha, e.beta, e.c)
                self._u[e.kind][pb.index(e.kind)[d]] = e.uncertainty
            changed.clear()
        changed = self._windows_changed
        if changed:
            est, opm = self.opm.est, self.opm
            for d in changed:
                kind = est[d].kind
                self._n_window[kind][pb.index(kind)[d]] = opm.n_window(d)
            changed.clear()
        return pb

    def _risky_mask(self, pb: PoolBacklog, kind: str, k: int) -> np.ndarray:
        index = pb.index(kind)
        risky = np.zeros(len(index), dtype=bool)
        risky[[index[d] for d, until in self.router.risky_until.items() if d in index and k < until]] = True
        return risky

    def _explore_vectorised(self, task, obs, k: int, hard: bool, need: int) -> str | None:
        """The exploration choice of :meth:`choose` over arrays: among the candidates with fewer
        than ``need`` samples in their window, the fewest samples, then the smallest estimated
        backlog, then the first in pool order (bit for bit the loop's key); None when every
        candidate has ``need`` samples (issue 11: the loop is O(devices) Python per task for the
        whole warmup budget)."""
        pb = self._arrays(obs)
        kind = task.kind
        b, cand = pb.backlog_ms(kind)
        if self.router.risky_until and hard:
            safe = cand & ~self._risky_mask(pb, kind, k)
            if safe.any():
                cand = safe
        n = self._n_window[kind]
        under = cand & (n < need)
        if not under.any():
            return None
        fewest = under & (n == n[under].min())
        return pb.devices(kind)[int(np.argmin(np.where(fewest, b, np.inf)))].name

    def _choose_vectorised(self, task, obs, k: int, hard: bool, w: float, pen: float) -> str:
        """The SECT loop above over numpy arrays of the kind's devices: the same scores, bit for
        bit, and the same choice (the first minimum in pool order), in O(changed devices) Python
        work plus a few array operations per task (issue 11; :mod:`e3.sim.backlog`)."""
        pb = self._arrays(obs)
        kind = task.kind
        scores, cand = pb.completion_ms(task)
        s = scores - w * self._u[kind]
        if self.router.risky_until:
            risky = self._risky_mask(pb, kind, k)
            safe = cand & ~risky
            if hard and safe.any():
                cand = safe
            else:
                s[risky] += pen
        return pb.devices(kind)[int(np.argmin(np.where(cand, s, np.inf)))].name

    # --- slow path -----------------------------------------------------------------------------
    def on_annotation(self, annotation, obs):
        if annotation.event == "device_return":
            self.opm.mark_stale(annotation.device)
            if self.params["recalibrate_after_alarm"]:  # its statistics are refreshed from new samples
                self.opm.open_recalibration(annotation.device)
        if annotation.event in ("device_leave", "device_return") and not self.params["churn_triggers"]:
            return  # state hygiene (section 3.7), not a controller call
        self._fire(Trigger(annotation.event, obs.task_index, annotation.device, {"label": annotation.label}), obs)

    def on_complete(self, record, obs):
        p = self.params
        observes = self._controller_observes
        predicted = self.opm.predict_ms(record.device, record.task) if observes else 0.0  # before observe()
        self.opm.observe(record)
        warmup = self._in_warmup(obs)
        if observes and not warmup and predicted > 0:
            self.controller.observe(record.device, record.service_ms / predicted, self._tools(obs))
        self._completions += 1
        every = p["steady_refit_every_tasks"]
        if every:
            self._steady_dirty.add(record.device)
        if warmup:
            self._warmup_observed.add(record.device)
            if self._completions % p["warmup_refit_every_tasks"] == 0:
                devices = self.opm.est if p["warmup_refit_scope"] == "all" else sorted(self._warmup_observed)
                for d in devices:
                    self.opm.refit(d, min_samples=p["warmup_min_samples"])
                self._warmup_observed.clear()
            return
        if every and self._completions % every == 0:
            self._steady_refit()
        device = record.device
        self.opm.recalibration_refit(device, p["opm_window_tasks"])
        ratio, n = self.opm.drift_ratio(device, obs.now_ms, p["drift_window_s"])
        if n >= p["alarm_min_samples"]:
            alarm = ("drift_alarm" if ratio > p["drift_threshold"]
                     else "residual_alarm" if ratio < 1.0 / p["drift_threshold"] else None)
            if alarm is not None:
                self._fire(Trigger(alarm, obs.task_index, device, {"ratio": ratio, "samples": n}), obs)
                if p["recalibrate_after_alarm"]:
                    # the regime boundary: later refits see only samples after it (the controller
                    # has measured the drift on the old window above)
                    self.recalibrations += 1
                    self.opm.restart_window(device)
                    self.opm.open_recalibration(device)

    def _steady_refit(self) -> None:
        # Refit only the devices whose fit can have changed since their last steady refit: new
        # completions in the window, or a calibration set by a tool (a refit of an unchanged window
        # at an unchanged calibration returns the same fit). O(changed devices), not O(pool).
        est = self.opm.est
        # Only devices whose estimate was written can have a new calibration.
        changed = {d for d in self._steady_written if est[d].calibration != self._steady_calibration[d]}
        self._steady_written.clear()
        for d in sorted(self._steady_dirty | changed):
            self.opm.refit(d)
            self._steady_calibration[d] = est[d].calibration
        self._steady_dirty.clear()

    def summary(self):
        t = self.tools
        return {"controller": self.controller.name, **self.controller.summary(),
                "tool_calls": t.tool_calls if t else 0, "tool_errors": t.tool_errors if t else 0,
                "triggers": self.triggers_seen, "triggers_suppressed": self.gate.suppressed,
                "opm_refits": sum(e.refits for e in self.opm.est.values()),
                "probes": self.probes, "recalibrations": self.recalibrations,
                "router_final": self.router.router}

    def audit_records(self) -> list[dict]:
        """Every tool call's audit record, in order."""
        return self.tools.audit if self.tools else []


@register
class E3AgentRLS(E3Agent):
    """E3-Agent with the RLS (forgetting factor) OPM of :mod:`e3.agent.opm_rls` instead of windowed
    least squares; everything else (router, triggers, controller) is unchanged."""

    name = "e3_rls"
    parameters = {**E3Agent.parameters, "rls_forgetting": 0.95}
    test_config = {"rls_forgetting": 1.0}

    def make_opm(self):
        from e3.agent.opm_rls import RLSPerformanceModel

        p = self.params
        return RLSPerformanceModel(self.pool, p["opm_window_tasks"], p["calibration_smoothing"], p["opm_min_samples"],
                                   lam=p["rls_forgetting"])
