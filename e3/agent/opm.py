"""Online Performance Model (paper section 3.4): per-device service-time estimates learned causally
from completed tasks only.

* LLM devices: least squares of Eq. 1 (``service = alpha * L_in + beta * L_out``, no intercept) on
  a recent window (Eq. 7), with non-negative coefficients (an exact two-variable NNLS: when one
  coefficient comes out negative it is set to 0 and the other refitted alone). With fewer samples
  than ``min_samples`` or a rank-deficient window, the current coefficients are scaled by the
  observed/predicted ratio instead. The window's sums of products are kept with its rows, so a
  well-conditioned refit solves the 2 x 2 normal equations (:func:`fit_eq1_sums`); a nearly
  collinear window, or one whose unconstrained optimum is negative, goes through LAPACK's SVD
  (:func:`fit_eq1_nonneg`).
* SDXL devices: a scalar ``c`` calibrated by exponential smoothing of the observed service times
  (weight ``smoothing`` per observation, Table 4: 0.3).
* A calibration factor per device multiplies every prediction (set by ``update_calibration``).
* Uncertainty ``u_d`` in [0, 1]: ``sqrt(1 / (1 + n) + cv^2)`` capped at 1, from the window's sample
  count ``n`` and residual coefficient of variation ``cv`` (sample scarcity and misfit).

Seeded with the MLPerf priors. Only :class:`e3.sim.observation.CompletedTask` records enter it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from e3.service_model import service_ms
from e3.sim.devices import DevicePrior
from e3.sim.observation import CompletedTask
from e3.sim.workload import TaskView


@dataclass
class DeviceEstimate:
    """The OPM's state for one device (units: ms/token for alpha/beta, ms for c)."""

    kind: str
    alpha: float = 0.0
    beta: float = 0.0
    c: float = 0.0
    calibration: float = 1.0
    uncertainty: float = 1.0
    n_total: int = 0
    refits: int = 0

    def __setattr__(self, name: str, value) -> None:
        # Every write of a field that a prediction or score reads is reported to the sets of the
        # owning OPM's subscribers (OnlinePerformanceModel.subscribe), whoever writes it (a refit,
        # a tool, a subclass), so vectorised scorers can refresh only those devices (issue 11).
        object.__setattr__(self, name, value)
        if name in _PREDICTOR_FIELDS:
            watch = self.__dict__.get("_watch")
            if watch is not None:
                sinks, device = watch
                for sink in sinks:
                    sink.add(device)


# The DeviceEstimate fields that predict_ms and the SECT score read.
_PREDICTOR_FIELDS = frozenset({"kind", "alpha", "beta", "c", "calibration", "uncertainty"})


# numpy.linalg's LAPACK gufuncs, the ones np.linalg.matrix_rank (through svd) and np.linalg.lstsq
# call inside their wrappers. Called directly, e3 runs about 8 % faster (a steady refit every 5
# completions per device; issue 11); the values are numpy's own, bit for bit
# (tests/test_hot_path.py). A numpy without them falls back to the public functions.
try:
    from numpy.linalg import _umath_linalg as _lapack

    _LAPACK_LSTSQ, _LAPACK_SVDVALS = _lapack.lstsq, _lapack.svd
except (ImportError, AttributeError):  # pragma: no cover - numpy's private layout changed
    _LAPACK_LSTSQ = _LAPACK_SVDVALS = None
_EPS = float(np.finfo(np.float64).eps)


def fit_eq1_nonneg(x_in: np.ndarray, x_out: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    """Least squares of ``y = alpha * x_in + beta * x_out`` with ``alpha, beta >= 0`` (Eq. 7).

    Args:
        x_in, x_out, y: arrays of shape (n,): input tokens, output tokens, service ms.

    Returns:
        (alpha, beta) in ms/token, or None when ``n < 2`` or the design matrix has rank < 2 (by
        ``np.linalg.matrix_rank``'s rule).

    Raises:
        numpy.linalg.LinAlgError: a NaN or inf in the inputs (the SVD does not converge).
    """
    if len(y) < 2:
        return None
    return _fit_design(np.column_stack([x_in, x_out]).astype(float), y)


def _fit_design(X: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    """:func:`fit_eq1_nonneg` on the design matrix ``X`` of shape (n, 2), n >= 2 (columns L_in,
    L_out; any strides: LAPACK reads a copy, so a view of the OPM's window gives the same fit as
    the stacked columns). The NNLS faces are computed on the stacked columns, as before."""
    if _LAPACK_LSTSQ is None:  # pragma: no cover - numpy's private layout changed
        if np.linalg.matrix_rank(X) < 2:
            return None
        coef = np.linalg.lstsq(X, y, rcond=None)[0]
    else:
        # np.linalg.matrix_rank's rule (singular values above max(s) * max(m, n) * eps) and
        # np.linalg.lstsq's call (gelsd, rcond = eps * max(m, n)), with their error handling
        tol = _EPS * max(X.shape)
        with np.errstate(all="ignore"):
            s = _LAPACK_SVDVALS(X, signature="d->d").tolist()
            if not all(v == v for v in s):  # NaN: the SVD did not converge
                raise np.linalg.LinAlgError("SVD did not converge")
            smax = max(s)
            if sum(v > smax * tol for v in s) < 2:
                return None
            coef = _LAPACK_LSTSQ(X, y[:, None], tol, signature="ddd->ddid")[0][:, 0]
        if not (coef[0] == coef[0] and coef[1] == coef[1]):
            raise np.linalg.LinAlgError("SVD did not converge in Linear Least Squares")
    a, b = float(coef[0]), float(coef[1])
    if a >= 0 and b >= 0:
        return a, b
    # Exact NNLS for two variables: the optimum lies on a face; try both and keep the better.
    # On the C-ordered stacked columns: the dot products' strides, so their sums, stay as they were.
    X = np.column_stack([X[:, 0], X[:, 1]]).astype(float)
    best = None
    for j in (0, 1):
        col = X[:, j]
        denom = float(col @ col)
        v = max(0.0, float(col @ y) / denom) if denom > 0 else 0.0
        cand = (v, 0.0) if j == 0 else (0.0, v)
        sse = float(np.sum((y - X @ np.array(cand)) ** 2))
        if best is None or sse < best[0]:
            best = (sse, cand)
    return best[1]


# The normal equations' relative error grows as eps * cond(X^T X); below this value of 1 - r^2
# (r: the cosine between the L_in and L_out columns; cond(X^T X) of the scaled columns is
# (1 + |r|) / (1 - |r|), so at most about 4e4 here) they are accurate to about 1e-11, and the SVD's
# rank rule (singular values above max(s) * n * eps) cannot find rank < 2. Nearer collinearity goes
# to the SVD, whose rank decision it then keeps.
NORMAL_EQUATIONS_MIN_1_MINUS_R2 = 1e-4


def fit_eq1_sums(s_ii: float, s_io: float, s_oo: float, s_iy: float, s_oy: float,
                 scale: float = 1.0) -> tuple[float, float] | None:
    """Eq. 7's least squares of ``y / scale = alpha * x_in + beta * x_out`` from the window's sums
    of products, by the 2 x 2 normal equations (Cramer's rule).

    Args:
        s_ii, s_io, s_oo: sums of L_in^2, L_in * L_out, L_out^2 over the window (tokens^2).
        s_iy, s_oy: sums of L_in * y and L_out * y (tokens * ms), y the observed service ms.
        scale: the device's calibration factor; the fit is of ``y / scale`` (as in
            :meth:`OnlinePerformanceModel.refit`).

    Returns:
        (alpha, beta) in ms/token when the columns are far from collinear
        (``1 - r^2 >= NORMAL_EQUATIONS_MIN_1_MINUS_R2``) and both coefficients are >= 0; None
        otherwise (the caller falls back to :func:`fit_eq1_nonneg`'s SVD and exact NNLS). The
        values agree with the SVD's to about 1e-11 relative, not bit for bit.
    """
    det = s_ii * s_oo - s_io * s_io
    if not (s_ii > 0.0 and s_oo > 0.0 and det >= NORMAL_EQUATIONS_MIN_1_MINUS_R2 * s_ii * s_oo):
        return None
    a = (s_oo * s_iy - s_io * s_oy) / (det * scale)
    b = (s_ii * s_oy - s_io * s_iy) / (det * scale)
    if a >= 0.0 and b >= 0.0:
        return a, b
    return None


def window_sums(rows: np.ndarray) -> list[float]:
    """The nine sums a refit needs, from a window's rows.

    Args:
        rows: float array of shape (n, 4), oldest first: end_ms, L_in, L_out, service_ms (y).

    Returns:
        ``[S_in, S_out, S_y, S_in_in, S_in_out, S_out_out, S_in_y, S_out_y, S_y_y]``: sums over the
        rows of L_in, L_out, y, L_in^2, L_in * L_out, L_out^2, L_in * y, L_out * y, y^2 (tokens,
        ms and their products), each summed in row order, as the OPM's row buffer sums its product
        columns (so the two agree bit for bit).
    """
    li, lo, y = rows[:, 1], rows[:, 2], rows[:, 3]
    cols = np.column_stack([li, lo, y, li * li, li * lo, lo * lo, li * y, lo * y, y * y])
    return np.add.reduce(cols, axis=0).tolist()


def window_uncertainty(n: int, sums: list[float], q: float, r: float) -> float:
    """The OPM's uncertainty ``u_d = min(1, sqrt(1 / (1 + n) + cv^2))`` (paper section 3.4; module
    docstring) from a window's sums.

    Args:
        n: samples in the window (>= 1).
        sums: the window's nine sums, as :func:`window_sums` returns them.
        q, r: the prediction's ms per input and output token, calibration included
            (``calibration * alpha``, ``calibration * beta``; 0 and 0 for SDXL, whose constant
            prediction moves every residual alike and so does not change their spread).

    Returns:
        ``u_d`` in [0, 1]. ``cv`` is the population standard deviation of the residuals
        ``y - q * L_in - r * L_out`` over the mean observed service time (floored at 1e-9 ms); 1
        when ``n < 2``. The variance comes from the sums (mean square minus squared mean), so a
        tiny negative value left by rounding counts as 0. Its rounding error is about eps times
        the mean square of the predictions and observations, so ``cv`` is good to about 1e-8
        when the predictions are of the observations' size, as a fit to the same window makes
        them (the refit's case); with predictions far above observations near 0 ms it is not.
    """
    if n < 2:
        cv = 1.0
    else:
        s_i, s_o, s_y, s_ii, s_io, s_oo, s_iy, s_oy, s_yy = sums
        mean_resid = (s_y - q * s_i - r * s_o) / n
        mean_sq_resid = (s_yy - 2.0 * (q * s_iy + r * s_oy) + q * q * s_ii + 2.0 * q * r * s_io + r * r * s_oo) / n
        var = mean_sq_resid - mean_resid * mean_resid
        cv = math.sqrt(var if var > 0.0 else 0.0) / max(s_y / n, 1e-9)
    return min(1.0, math.sqrt(1.0 / (1 + n) + cv * cv))


class OnlinePerformanceModel:
    """Per-device service-time estimates with uncertainty and drift statistics.

    Args:
        pool: devices with their MLPerf priors (the starting estimates).
        window_tasks: recent completed tasks kept per device for fitting.
        smoothing: SDXL exponential-smoothing weight per observation (Table 4: 0.3).
        min_samples: LLM samples needed for a least-squares refit.
    """

    def __init__(self, pool: list[DevicePrior], window_tasks: int = 30, smoothing: float = 0.3,
                 min_samples: int = 2) -> None:
        self.smoothing = smoothing
        self.min_samples = min_samples
        self.est: dict[str, DeviceEstimate] = {}
        self.window: dict[str, deque] = {}
        # SDXL samples not yet folded into the calibration. Bounded so memory stays flat on long
        # horizons: a sample older than this carries weight (1 - smoothing)^maxlen < 1e-30 in the
        # EWMA, below double precision, so dropping it changes nothing.
        self._unconsumed_maxlen = 1000
        if 0.0 < smoothing < 1.0:
            self._unconsumed_maxlen = max(1000, math.ceil(math.log(1e-30) / math.log(1.0 - smoothing)))
        self._unconsumed: dict[str, deque] = {}
        # Devices in a recalibration period after a regime boundary (section 3.4: the profile is
        # "updated online during warmup and after detected drift"): device -> the minimum samples
        # of its refits (section 3.5: the controller "may request rapid calibration by reducing the
        # minimum samples required for an OPM update ... after a detected regime shift"). The e3
        # policy refits such a device at each of its completions until its window is full again.
        self.recalibrating: dict[str, int] = {}
        self._sinks: list[set[str]] = []  # see subscribe()
        self._window_sinks: list[set[str]] = []  # see subscribe_windows()
        for d in pool:
            e = DeviceEstimate(d.kind, d.alpha_prior_ms_per_token, d.beta_prior_ms_per_token, d.c_prior_ms)
            object.__setattr__(e, "_watch", (self._sinks, d.name))
            self.est[d.name] = e
            self.window[d.name] = deque(maxlen=window_tasks)
            self._unconsumed[d.name] = deque(maxlen=self._unconsumed_maxlen)
        # The windows again as rows of float arrays, for the refit (issue 11: building an array from
        # the deque was a sixth of a refit). Each row is written at i and i + window_tasks, so the
        # window's rows, oldest first, are always one contiguous slice (see _window_rows). Columns:
        # end_ms, L_in, L_out, service_ms, then the products whose sums a refit needs (L_in^2,
        # L_in * L_out, L_out^2, L_in * service_ms, L_out * service_ms, service_ms^2; window_sums),
        # so a refit is one reduction and a few float operations, whatever the window's length.
        self._window_tasks = window_tasks
        self._rows = {name: np.empty((2 * window_tasks, 10)) for name in self.est} if window_tasks else {}
        self._row_count = dict.fromkeys(self.est, 0)

    def subscribe(self) -> set[str]:
        """A set of device names that starts with every device and receives each device whose
        estimate (kind, alpha, beta, c, calibration or uncertainty) is written from now on; the
        subscriber empties it as it consumes it. Lets a policy refresh O(changed devices) state
        instead of rescanning the pool (issue 11)."""
        sink = set(self.est)
        self._sinks.append(sink)
        return sink

    def subscribe_windows(self) -> set[str]:
        """Like :meth:`subscribe`, for each device whose recent window (:meth:`n_window`) changes:
        a completion observed, or the window dropped by :meth:`mark_stale`."""
        sink = set(self.est)
        self._window_sinks.append(sink)
        return sink

    # --- fast path -----------------------------------------------------------------------------
    def predict_ms(self, device: str, task: TaskView) -> float:
        """Predicted service time of ``task`` on ``device`` (ms)."""
        e = self.est[device]
        return e.calibration * service_ms(e.kind, e.alpha, e.beta, e.c, task.input_tokens, task.output_tokens)

    def uncertainty(self, device: str) -> float:
        """Epistemic uncertainty of ``device`` in [0, 1] (see module docstring)."""
        return self.est[device].uncertainty

    def n_window(self, device: str) -> int:
        """Completed tasks in ``device``'s recent window."""
        return len(self.window[device])

    # --- feedback ------------------------------------------------------------------------------
    def observe(self, rec: CompletedTask) -> None:
        """Append one completed task to its device's window (no refit here)."""
        t, device, service = rec.task, rec.device, rec.service_ms
        li, lo = t.input_tokens, t.output_tokens
        self._append_row(device, rec.end_ms, li, lo, service)
        for sink in self._window_sinks:
            sink.add(device)
        e = self.est[device]
        if e.kind != "llm":  # only the SDXL calibration consumes these
            self._unconsumed[device].append(service)
        e.n_total += 1

    def refit(self, device: str, min_samples: int | None = None, window: int | None = None) -> bool:
        """Refit ``device`` from its recent window (the ``trigger_online_profile_update`` action).

        Args:
            device: device name.
            min_samples: override of the LLM least-squares sample threshold (warmup uses 1).
            window: use only the most recent ``window`` samples.

        Returns:
            True when the estimate changed.

        Raises:
            numpy.linalg.LinAlgError: a NaN or inf service time in an LLM window (the SVD's).
        """
        e = self.est[device]
        n, sums = self._window_sums(device, window)
        if not n:
            return False
        s_i, s_o, s_y, s_ii, s_io, s_oo, s_iy, s_oy, _ = sums
        cal = e.calibration
        if e.kind == "llm":
            need = self.min_samples if min_samples is None else min_samples
            fit = None
            if n >= max(2, need):
                fit = fit_eq1_sums(s_ii, s_io, s_oo, s_iy, s_oy, scale=cal)
                if fit is None:  # nearly collinear, or a coefficient < 0: the SVD and the exact NNLS
                    rows = self._window_rows(device, window)
                    fit = _fit_design(rows[:, 1:3], rows[:, 3] / cal)
            if fit is not None:
                e.alpha, e.beta = fit
            elif n >= need:
                pred_sum = cal * (e.alpha * s_i + e.beta * s_o)
                if pred_sum > 0:
                    r = s_y / pred_sum
                    e.alpha, e.beta = e.alpha * r, e.beta * r
            else:
                return False
            q, r = cal * e.alpha, cal * e.beta
        else:
            for s in self._unconsumed[device]:
                e.c = (1.0 - self.smoothing) * e.c + self.smoothing * s / cal
            self._unconsumed[device].clear()
            q = r = 0.0  # Eq. 2 predicts a constant, which the residuals' spread does not see
        e.uncertainty = window_uncertainty(n, sums, q, r)
        e.refits += 1
        return True

    def _window_sums(self, device: str, window: int | None) -> tuple[int, list[float]]:
        """``(n, sums)`` of ``device``'s recent window (as :meth:`_window_rows`): its sample count and
        the nine sums of :func:`window_sums`, from the row buffer's product columns when the whole
        window is asked for (one reduction), else from the rows."""
        rows = self._buffered_window(device, window)
        if rows is not None:
            return len(rows), np.add.reduce(rows[:, 1:10], axis=0).tolist()
        rows = self._window_rows(device, window)
        return len(rows), window_sums(rows)

    def _window_rows(self, device: str, window: int | None) -> np.ndarray:
        """``device``'s recent window (its last ``window`` samples; all when None or 0) as a float
        array of shape (n, 4), oldest first: end_ms, L_in, L_out, service_ms. A view of the row
        buffer when the whole window is asked for, else built from the deque as before."""
        rows = self._buffered_window(device, window)
        if rows is not None:
            return rows[:, :4]
        dq = self.window[device]
        obs = list(dq)[-(window or len(dq)):] if dq else []
        return np.array(obs, dtype=float).reshape(len(obs), 4)

    def _buffered_window(self, device: str, window: int | None) -> np.ndarray | None:
        """The row buffer's slice of shape (n, 10) holding ``device``'s whole window, oldest first
        (columns as in ``__init__``), when the whole window is asked for (``window`` None, 0 or
        at least n); None otherwise or without a buffer."""
        n = len(self.window[device])
        if not self._rows or (window or n) < n:
            return None
        start = (self._row_count[device] - n) % self._window_tasks
        return self._rows[device][start:start + n]

    def restart_window(self, device: str, keep: int = 0) -> None:
        """Start ``device``'s window afresh at a regime boundary (an alarm, a controller's action,
        a re-probe), keeping only its ``keep`` most recent samples, so later refits fit only
        evidence from after the boundary and a calibration set there is not undone by a refit of
        older samples (issue 28: a refit of pre-alarm samples divided by the new calibration gives
        calibration x fit(y / calibration) = fit(y), which cancelled the action). Coefficients,
        calibration and uncertainty are kept; SDXL samples not yet folded into ``c`` are dropped
        with the rest of the old regime.

        Raises:
            KeyError: an unknown device.
        """
        dq = self.window[device]
        if keep >= len(dq):
            return
        kept = list(dq)[len(dq) - keep:] if keep > 0 else []
        dq.clear()
        if self._rows:
            self._row_count[device] = 0
        for end_ms, li, lo, service in kept:  # rewrite the row buffer as observe() does
            self._append_row(device, end_ms, li, lo, service)
        self._unconsumed[device].clear()
        for sink in self._window_sinks:
            sink.add(device)

    def open_recalibration(self, device: str, min_samples: int | None = None) -> None:
        """Put ``device`` in a recalibration period (see ``recalibrating``) with refits of at least
        ``min_samples`` samples (default: the OPM's ``min_samples``; an open period keeps the
        smaller of the two, so a controller's request for rapid calibration is not undone)."""
        m = self.min_samples if min_samples is None else int(min_samples)
        self.recalibrating[device] = min(m, self.recalibrating.get(device, m))

    def recalibration_refit(self, device: str, window_tasks: int) -> bool:
        """One completion's update of a device in a recalibration period (see ``recalibrating``):
        a refit with the period's minimum samples; the period ends once the device's window holds
        ``window_tasks`` samples again. Returns whether the device was in a period."""
        m = self.recalibrating.get(device)
        if m is None:
            return False
        self.refit(device, min_samples=m)
        if self.n_window(device) >= window_tasks:
            del self.recalibrating[device]
        return True

    def _append_row(self, device: str, end_ms: float, li: int, lo: int, service: float) -> None:
        self.window[device].append((end_ms, li, lo, service))
        if self._rows:
            w, k = self._window_tasks, self._row_count[device]
            rows = self._rows[device]
            rows[k % w] = rows[k % w + w] = (end_ms, li, lo, service, li * li, li * lo, lo * lo, li * service,
                                              lo * service, service * service)
            self._row_count[device] = k + 1

    def mark_stale(self, device: str) -> None:
        """State hygiene after a device returns from churn: drop its window and raise its
        uncertainty, keeping the coefficients as a starting point (paper section 3.7)."""
        self.restart_window(device)
        self.est[device].uncertainty = 1.0

    # --- diagnosis -----------------------------------------------------------------------------
    def drift_ratio(self, device: str, now_ms: float, window_s: float) -> tuple[float, int]:
        """Observed/predicted service ratio over completions in the last ``window_s`` seconds.

        Returns:
            (ratio, sample count); ratio is 1.0 when there are no samples.
        """
        e = self.est[device]
        kind, alpha, beta, c, cal = e.kind, e.alpha, e.beta, e.c, e.calibration
        lo = now_ms - 1000.0 * window_s
        obs_sum = pred_sum = 0.0
        n = 0
        if kind == "llm":
            for end, li, lo_, s in reversed(self.window[device]):
                if end < lo:
                    break
                obs_sum += s
                pred_sum += cal * service_ms(kind, alpha, beta, c, li, lo_)
                n += 1
        else:
            pred = cal * service_ms(kind, alpha, beta, c, 0, 0)  # Eq. 2 does not depend on the task
            for end, _, _, s in reversed(self.window[device]):
                if end < lo:
                    break
                obs_sum += s
                pred_sum += pred
                n += 1
        return ((obs_sum / pred_sum) if pred_sum > 0 else 1.0), n
