"""The fast path's shortcuts compute exactly what the plain definitions compute.

Each shortcut of the per-task hot path (issue 11) is checked against the straightforward code it
replaces, bit for bit: the column-buffered trace writer against a sorted-rows reference, the
inlined SECT score against ``backlog_ms + predict``, and the single Eq. 1 / Eq. 2 function
against the formulas.
"""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from e3.agent.opm import OnlinePerformanceModel
from e3.mlperf.pool import DevicePrior
from e3.service_model import service_ms
from e3.sim.observation import DeviceState, Observation
from e3.sim.trace import SCHEMA, TraceWriter, bool_array, fixed_width_array, string_array
from e3.sim.workload import TaskView


def _rows(n: int, rng: random.Random) -> list[tuple]:
    out = []
    for k in range(n):
        kind = "llm" if k % 2 == 0 else "sdxl"
        task = TaskView(k, kind, rng.choice([128, 2048]) if kind == "llm" else 0,
                        rng.choice([32, 256]) if kind == "llm" else 0, k * 5000.0 + rng.random())
        start = task.arrival_ms + rng.random() * 100.0
        end = start + rng.random() * 7000.0
        out.append((task, task.arrival_ms + 0.5, f"D#{k % 3}", start, end, rng.random() < 0.1, k % 2))
    return out


def _reference_table(rows: list[tuple]) -> pa.Table:
    cols = [[] for _ in SCHEMA.names]
    for task, dispatch, device, start, end, stutter, redisp in rows:
        vals = (task.task_id, task.kind, task.input_tokens, task.output_tokens, task.arrival_ms, dispatch,
                device, start, end, end - start, start - task.arrival_ms, end - task.arrival_ms, stutter, redisp)
        for c, v in zip(cols, vals, strict=True):
            c.append(v)
    return pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(cols, SCHEMA, strict=True)], schema=SCHEMA)


@pytest.mark.parametrize("batch_rows", [1, 7, 64, 10_000])
def test_trace_writer_out_of_order_equals_sorted_rows(tmp_path, batch_rows):
    rng = random.Random(3)
    rows = _rows(500, rng)
    shuffled = rows[:]
    # Local disorder plus one task that finishes very late (a re-dispatch under churn).
    for i in range(0, len(shuffled) - 5, 5):
        block = shuffled[i:i + 5]
        rng.shuffle(block)
        shuffled[i:i + 5] = block
    shuffled.append(shuffled.pop(shuffled.index(rows[37])))
    path = tmp_path / "t.parquet"
    with TraceWriter(path, batch_rows=batch_rows) as w:
        for r in shuffled:
            w.add(*r)
    assert w.rows_written == len(rows)
    got = pq.read_table(path)
    assert got.schema == SCHEMA
    assert got.equals(_reference_table(rows))
    # The latencies kept in memory (what summary.json is computed from) are the file's column.
    assert w.latency_ms().tobytes() == got.column("latency_ms").to_numpy().tobytes()


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_trace_file_bytes_equal_a_file_of_pa_array_columns(tmp_path, suffix):
    """The numpy-buffer columns write the same bytes as columns built by ``pa.array``, and the
    latencies kept in memory are the column read back from the file."""
    import pyarrow.csv as pacsv

    rows = _rows(300, random.Random(5))
    with TraceWriter(tmp_path / f"w.{suffix}", batch_rows=64) as w:
        for r in rows:
            w.add(*r)
    ref = _reference_table(rows)
    writer = (pq.ParquetWriter(tmp_path / "r.parquet", SCHEMA, compression="zstd") if suffix == "parquet"
              else pacsv.CSVWriter(tmp_path / "r.csv", SCHEMA))
    with writer as pw:
        for off in range(0, len(rows), 64):
            pw.write_table(ref.slice(off, 64))
    assert (tmp_path / f"w.{suffix}").read_bytes() == (tmp_path / f"r.{suffix}").read_bytes()
    back = (pq.read_table(tmp_path / "w.parquet") if suffix == "parquet" else pacsv.read_csv(tmp_path / "w.csv"))
    assert w.latency_ms().tobytes() == back.column("latency_ms").to_numpy().astype(np.float64).tobytes()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(), max_size=40), st.lists(st.booleans(), max_size=70),
       st.lists(st.integers(-2**31, 2**31 - 1), max_size=40), st.lists(st.floats(allow_nan=True), max_size=40))
def test_buffer_columns_equal_pa_array(texts, bools, ints, floats):
    assert string_array(texts).equals(pa.array(texts, type=pa.string()))
    assert bool_array(bools).equals(pa.array(bools, type=pa.bool_()))
    assert fixed_width_array(np.array(ints, dtype=np.int32), pa.int32()).equals(pa.array(ints, type=pa.int32()))
    got = fixed_width_array(np.array(floats, dtype=np.float64), pa.float64())
    # bytes, not equals(): NaN != NaN
    assert got.to_numpy().tobytes() == pa.array(floats, type=pa.float64()).to_numpy().tobytes()
    assert got.type == pa.float64() and got.null_count == 0
    for arr in (string_array(texts), bool_array(bools), got):
        arr.validate(full=True)


def test_fixed_width_array_refuses_another_dtype():
    with pytest.raises(ValueError, match="need a 1-d int64 array, got float64"):
        fixed_width_array(np.zeros(3), pa.int64())


def test_a_simulation_run_does_not_import_pandas(repo, tmp_path):
    """pandas costs about 0.3 s of CPU per process; the E3 trace writer avoids pyarrow's lazy
    pandas import, so a simulation job never pays it (a structural check, not a timing)."""
    code = ("import sys; from e3.cli import main; "
            f"main(['simulate', '--config', {str(repo / 'config' / 'config.yaml')!r}, '--scenario', 'churn', "
            f"'--policy', 'e3', '--seeds', '1', '--tasks', '300', '--out', {str(tmp_path / 'r{seed}')!r}]); "
            "print('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr
    assert (tmp_path / "r1" / "tasks.parquet").is_file()


def test_trace_writer_reports_a_gap(tmp_path):
    rows = _rows(10, random.Random(1))
    with pytest.raises(RuntimeError, match="2 rows after a gap at task 3"):
        with TraceWriter(tmp_path / "t.csv") as w:
            for r in rows[:3] + rows[4:6]:
                w.add(*r)


def test_trace_writer_rejects_other_suffixes(tmp_path):
    with pytest.raises(ValueError, match="must end in .parquet or .csv"):
        TraceWriter(tmp_path / "t.json").__enter__()


def _prior(name: str, kind: str) -> DevicePrior:
    if kind == "llm":
        return DevicePrior(name, "llm", "sys", "v5.1", alpha_prior_ms_per_token=0.37, beta_prior_ms_per_token=31.3)
    return DevicePrior(name, "sdxl", "sys", "v5.1", c_prior_ms=5123.7)


@pytest.mark.parametrize("kind", ["llm", "sdxl"])
def test_expected_completion_equals_backlog_plus_prediction(kind):
    rng = random.Random(7)
    pool = [_prior("A", kind)]
    opm = OnlinePerformanceModel(pool)
    e = opm.est["A"]
    e.calibration, e.alpha, e.beta, e.c = 1.37, 0.41, 29.9, 4801.3
    dev = DeviceState("A", kind)
    obs = Observation([dev])
    for k in range(200):
        task = TaskView(k, kind, rng.choice([128, 2048]) if kind == "llm" else 0,
                        rng.choice([32, 256]) if kind == "llm" else 0, 0.0)
        obs._now_ms = 1000.0 * k + rng.random()
        if rng.random() < 0.3:
            dev._queue.append(task)  # the engine's side of the state
        if rng.random() < 0.3 and dev._queue:
            dev._in_service, dev._in_service_start_ms = dev._queue.popleft(), obs.now_ms - 3000.0 * rng.random()
        want = obs.backlog_ms(dev, opm.predict_ms) + opm.predict_ms("A", task)
        got = obs.expected_completion_ms(dev, task, e.calibration, e.kind, e.alpha, e.beta, e.c)
        assert got == want  # bit for bit, not approximately


def test_service_ms_is_eq1_and_eq2():
    assert service_ms("llm", 0.5, 20.0, 999.0, 100, 10) == 0.5 * 100 + 20.0 * 10
    assert service_ms("sdxl", 0.5, 20.0, 999.0, 100, 10) == 999.0
    p = _prior("A", "llm")
    assert p.prior_service_ms(512, 64) == 0.37 * 512 + 31.3 * 64


def test_one_sha256_helper_keeps_seeds_and_hashes():
    import hashlib

    from e3.config import config_hash
    from e3.io import sha256_file, sha256_hex
    from e3.seeds import derive_seed

    text = "1|drift|policy|e3"
    assert derive_seed(1, "drift", "policy", "e3") == int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1
    assert sha256_hex(text) == sha256_hex(text.encode()) == hashlib.sha256(text.encode()).hexdigest()
    assert config_hash({"b": 1, "a": [2]}) == hashlib.sha256(b'{"a": [2], "b": 1}').hexdigest()
    assert len(sha256_file(__file__)) == 64


def test_fast_record_constructors_equal_the_dataclasses():
    import dataclasses

    from e3.sim.observation import CompletedTask, new_completed_task
    from e3.sim.workload import _task_view

    t = _task_view(3, "llm", 128, 32, 15000.0)
    assert type(t) is TaskView and t == TaskView(3, "llm", 128, 32, 15000.0)
    r = new_completed_task(t, "LLM#0", 15000.0, 15001.0, 17000.5)
    assert type(r) is CompletedTask and r == CompletedTask(t, "LLM#0", 15000.0, 15001.0, 17000.5)
    assert r.service_ms == 1999.5 and r.latency_ms == 2000.5
    for obj, field in ((t, "kind"), (r, "device")):  # still immutable
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, field, None)


# --- the vectorised SECT score (issue 11; e3.sim.backlog) -------------------------------------
@pytest.mark.parametrize("kind", ["llm", "sdxl"])
def test_backlog_arrays_equal_the_per_device_score(kind):
    from e3.sim.backlog import PoolBacklog

    rng = random.Random(11)
    devs = [DeviceState(f"D{i}", kind) for i in range(9)]
    obs = Observation(devs)
    pb = PoolBacklog(obs)
    pred = {}
    for k in range(400):
        obs._now_ms = 700.0 * k + rng.random()
        d = rng.choice(devs)
        task = TaskView(k, kind, rng.choice([17, 128, 2048]) if kind == "llm" else 0,
                        rng.choice([3, 32, 256]) if kind == "llm" else 0, obs.now_ms)
        step = rng.random()
        if step < 0.4:  # the engine's side of the state, with its notes
            d._queue.append(task)
        elif step < 0.7 and d._queue:
            d._in_service, d._in_service_start_ms = d._queue.popleft(), obs.now_ms - 3000.0 * rng.random()
        elif step < 0.8:
            d._in_service = None
        elif step < 0.85:
            obs._set_available(d, not d._available)
        obs._touch(d)
        if k % 7 == 0 or d.name not in pred:  # a predictor changes now and then
            pred[d.name] = (rng.uniform(0.5, 2.0), rng.uniform(0, 1), rng.uniform(5, 40), rng.uniform(1e3, 9e3))
            pb.set_predictor(d.name, kind, *pred[d.name])
        got, avail = pb.completion_ms(task)
        for i, dev in enumerate(devs):
            f, a, b, c = pred.get(dev.name, (1.0, 0.0, 0.0, 0.0))  # the arrays' initial predictor
            assert got[i] == obs.expected_completion_ms(dev, task, f, kind, a, b, c)  # bit for bit
            assert avail[i] == dev._available


def _run_files(cfg, scenario, policy, out, n_tasks):
    import json

    from e3.experiment.run import simulate
    from e3.io import sha256_file

    simulate(cfg, scenario, policy, 1, out, n_tasks=n_tasks)
    summary = json.loads((out / "summary.json").read_text())
    for key in ("wall_s", "tasks_per_s", "provenance"):
        summary.pop(key, None)
    return sha256_file(out / "tasks.parquet"), summary


@pytest.mark.parametrize("policy", ["e3", "sed_ewma", "oracle", "oracle_avoid"])
@pytest.mark.parametrize("scenario,devices", [("churn", None), ("semantic", None), ("scale_drift", 40),
                                              ("scale_semantic", 40), ("scale_churn", 40)])
def test_vectorised_sect_runs_equal_the_loop(repo, tmp_path, monkeypatch, policy, scenario, devices):
    """Whole runs with the array path forced on every choice equal runs with it off: the same
    trace, bit for bit, and the same summary."""
    import e3.sim.backlog as backlog
    from e3.config import load_config

    cfg = load_config(repo / "config/config.yaml")
    if devices:
        cfg["pool_generator"] = {"devices": devices}
    results = []
    for threshold in (1, 10**9):
        monkeypatch.setattr(backlog, "VECTOR_MIN_DEVICES", threshold)
        results.append(_run_files(cfg, scenario, policy, tmp_path / f"t{threshold}", 3000))
    assert results[0] == results[1]


def test_vectorised_soft_penalty_oracle_equals_the_loop(repo, tmp_path, monkeypatch):
    """oracle_avoid with a soft penalty (the operating-point frontier's Oracle): arrays and loop
    give the same run, bit for bit."""
    import e3.sim.backlog as backlog
    from e3.config import load_config

    cfg = load_config(repo / "config/config.yaml")
    cfg["pool_generator"] = {"devices": 40}
    cfg["policies"].setdefault("oracle_avoid", {})["soft_penalty_ms"] = 30000.0
    results = []
    for threshold in (1, 10**9):
        monkeypatch.setattr(backlog, "VECTOR_MIN_DEVICES", threshold)
        results.append(_run_files(cfg, "scale_semantic", "oracle_avoid", tmp_path / f"t{threshold}", 3000))
    assert results[0] == results[1]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=8192), st.integers(min_value=0, max_value=8192),
                          st.floats(min_value=0.0, max_value=1e6, allow_nan=False)), min_size=1, max_size=40),
       st.sampled_from(["llm", "sdxl"]), st.floats(min_value=0.25, max_value=4.0))
def test_window_uncertainty_equals_the_two_pass_formula(rows, kind, scale):
    """The refit's uncertainty from the window's sums (issue 11: O(1) Python per refit) equals
    the definition computed on the residuals themselves (np.std, np.mean), to an absolute 1e-6 on
    u, for predictions as the refit makes them: Eq. 1 fitted to the same window (the SVD fit, or
    the sum-matching rescale where it defers), Eq. 2's constant for SDXL."""
    import math

    import numpy as np

    from e3.agent.opm import fit_eq1_nonneg, window_sums, window_uncertainty

    arr = np.array([(float(i), li, lo, y) for i, (li, lo, y) in enumerate(rows)], dtype=float)
    n, x_in, x_out, y = len(arr), arr[:, 1], arr[:, 2], arr[:, 3]
    q = r = 0.0
    if kind == "llm":
        fit = fit_eq1_nonneg(x_in, x_out, y / scale) if n >= 2 else None
        a, b = fit if fit is not None else (1.0, 2.0)
        if fit is None and (a * x_in.sum() + b * x_out.sum()) > 0:
            k = y.sum() / (scale * (a * x_in.sum() + b * x_out.sum()))
            a, b = a * k, b * k
        q, r = scale * a, scale * b
    if n < 2:
        want = min(1.0, math.sqrt(1.0 / (1 + n) + 1.0))
    else:
        resid = y - (q * x_in + r * x_out)
        cv = float(np.std(resid) / max(np.mean(y), 1e-9))
        want = min(1.0, math.sqrt(1.0 / (1 + n) + cv * cv))
    got = window_uncertainty(n, window_sums(arr), q, r)
    assert 0.0 <= got <= 1.0
    assert got == pytest.approx(want, abs=1e-6)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=1, max_value=8192), st.integers(min_value=1, max_value=8192),
                          st.floats(min_value=0.0, max_value=1e6, allow_nan=False)), min_size=2, max_size=40),
       st.floats(min_value=0.25, max_value=4.0))
def test_normal_equations_agree_with_the_svd_fit_or_defer_to_it(rows, scale):
    """fit_eq1_sums (the refit's 2 x 2 normal equations) either returns the SVD fit of
    fit_eq1_nonneg to 1e-9 relative (1e-9 of the larger coefficient, absolute, for the smaller),
    or returns None so the refit takes that fit: for nearly collinear windows and negative
    optima."""
    import numpy as np

    from e3.agent.opm import fit_eq1_nonneg, fit_eq1_sums, window_sums

    arr = np.array([(float(i), li, lo, y) for i, (li, lo, y) in enumerate(rows)], dtype=float)
    sums = window_sums(arr)
    got = fit_eq1_sums(*sums[3:8], scale=scale)
    want = fit_eq1_nonneg(arr[:, 1], arr[:, 2], arr[:, 3] / scale)
    if got is None:
        return
    assert want is not None
    big = max(abs(want[0]), abs(want[1]))
    assert got[0] == pytest.approx(want[0], rel=1e-9, abs=1e-9 * big)
    assert got[1] == pytest.approx(want[1], rel=1e-9, abs=1e-9 * big)


def test_normal_equations_defer_collinear_and_negative_windows():
    """A window of one token shape (rank 1), one with no input tokens, and one whose
    unconstrained optimum has alpha < 0 all go to the SVD and exact NNLS (None here)."""
    import numpy as np

    from e3.agent.opm import fit_eq1_sums, window_sums

    def sums(rows):
        return window_sums(np.array([(0.0, *r) for r in rows], dtype=float))[3:8]

    assert fit_eq1_sums(*sums([(512, 128, 900.0), (1024, 256, 1800.0), (256, 64, 455.0)])) is None
    assert fit_eq1_sums(*sums([(0, 128, 900.0), (0, 256, 1800.0)])) is None
    assert fit_eq1_sums(*sums([(100, 10, 400.0), (200, 10, 300.0), (300, 10, 200.0), (400, 11, 100.0)])) is None
    a, b = fit_eq1_sums(*sums([(100, 10, 150.0), (200, 30, 350.0), (300, 10, 350.0)]))
    assert a == pytest.approx(1.0) and b == pytest.approx(5.0)


def _fit_eq1_reference(x_in, x_out, y):
    """fit_eq1_nonneg as written with numpy's public np.linalg calls (before issue 11's change)."""
    import numpy as np

    X = np.column_stack([x_in, x_out]).astype(float)
    if len(y) < 2 or np.linalg.matrix_rank(X) < 2:
        return None
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    a, b = float(coef[0]), float(coef[1])
    if a >= 0 and b >= 0:
        return a, b
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


_TOKENS = st.integers(min_value=0, max_value=8192)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_TOKENS, _TOKENS, st.floats(min_value=0.0, max_value=1e6, allow_nan=False)),
                min_size=1, max_size=40),
       st.sampled_from(["free", "proportional", "constant_out"]))
def test_fit_eq1_nonneg_equals_numpy_linalg_bit_for_bit(rows, shape):
    """The steady refit calls numpy's LAPACK gufuncs directly; coefficients, rank decisions (None)
    and the NNLS fallback must equal the np.linalg.matrix_rank / np.linalg.lstsq version exactly,
    rank-deficient windows (x_out proportional to x_in, or constant) included."""
    import numpy as np

    from e3.agent.opm import fit_eq1_nonneg

    x_in = np.array([r[0] for r in rows], dtype=float)
    x_out = {"free": np.array([r[1] for r in rows], dtype=float), "proportional": 3.0 * x_in,
             "constant_out": np.full(len(rows), float(rows[0][1]))}[shape]
    y = np.array([r[2] for r in rows], dtype=float)
    assert fit_eq1_nonneg(x_in, x_out, y) == _fit_eq1_reference(x_in, x_out, y)


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=1, max_value=6),
       st.lists(st.one_of(st.tuples(_TOKENS, _TOKENS, st.floats(min_value=0.0, max_value=1e6, allow_nan=False)),
                          st.just("stale")), min_size=1, max_size=40))
def test_opm_window_rows_and_refit_equal_the_deque_version(window, events):
    """The OPM keeps each window twice: the deque (the drift statistics, n_window) and a row
    buffer the refit slices (issue 11). After any run of completions and churn returns, the slice
    equals the array built from the deque, the sums of its product columns equal window_sums of
    that array, and the fit on its strided columns equals the fit on the stacked columns, bit for
    bit."""
    import numpy as np

    from e3.agent.opm import _fit_design, window_sums
    from e3.sim.observation import CompletedTask

    opm = OnlinePerformanceModel([DevicePrior("L", "llm", "s", "v", alpha_prior_ms_per_token=1.0,
                                              beta_prior_ms_per_token=2.0)], window_tasks=window)
    for i, ev in enumerate(events):
        if ev == "stale":
            opm.mark_stale("L")
        else:
            t = TaskView(i, "llm", ev[0], ev[1], float(i))
            opm.observe(CompletedTask(t, "L", float(i), float(i), 1000.0 * i))
        want = np.array(list(opm.window["L"]), dtype=float).reshape(-1, 4)
        got = opm._window_rows("L", None)
        assert got.shape == want.shape and (got == want).all()
        n, sums = opm._window_sums("L", None)  # the buffer's product columns, summed
        assert n == len(want) and (not n or sums == window_sums(want))
        if len(want) >= 2:
            assert _fit_design(got[:, 1:3], got[:, 3].copy()) == _fit_eq1_reference(want[:, 1], want[:, 2], want[:, 3])
        for w in (1, 2, 50):  # a refit over the last w samples (the refit tool's window)
            part = opm._window_rows("L", w)
            assert (part == want[-w:]).all()


def test_fit_eq1_nonneg_refuses_nan_as_numpy_does():
    import numpy as np

    from e3.agent.opm import fit_eq1_nonneg

    x = np.array([1.0, 2.0, np.nan])
    with pytest.raises(np.linalg.LinAlgError):
        fit_eq1_nonneg(x, np.array([1.0, 5.0, 2.0]), np.array([3.0, 4.0, 5.0]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.floats(min_value=0.0, max_value=1e7, allow_nan=False), min_size=1, max_size=12),
                min_size=1, max_size=15), st.randoms(use_true_random=False))
def test_group_quantiles_equal_numpy_per_group_bit_for_bit(groups, rnd):
    from e3.analysis.aggregate import group_quantiles

    labels = [k for k, g in enumerate(groups) for _ in g]
    values = [v for g in groups for v in g]
    perm = list(range(len(values)))
    rnd.shuffle(perm)  # groups interleaved, as rows of many traces are
    got = group_quantiles(np.array([labels[i] for i in perm]), np.array([values[i] for i in perm]), (0.1, 0.5, 0.9))
    for j, q in enumerate((0.1, 0.5, 0.9)):
        want = np.array([np.quantile(np.array(g), q) for g in groups])
        assert got[j].tobytes() == want.tobytes()


def test_group_quantiles_refuse_mismatched_or_empty_groups():
    from e3.analysis.aggregate import group_quantiles

    with pytest.raises(ValueError, match="2 group numbers for 3 values"):
        group_quantiles(np.array([0, 0]), np.zeros(3), (0.5,))
    with pytest.raises(ValueError, match="group 1 has no values"):
        group_quantiles(np.array([0, 2]), np.zeros(2), (0.5,))


def _reference_trajectories(paths, runs):
    """The trajectories table built the straightforward way: one DataFrame per trace, a Python
    quantile per group (the code before stop 17)."""
    import pandas as pd

    frames = []
    for path, (_, r) in zip(paths, runs.iterrows(), strict=True):
        t = pd.read_parquet(path, columns=["task_id", "latency_ms", "stutter"])
        t["scenario"], t["policy"], t["controller"] = r["scenario"], r["policy"], r["controller"]
        frames.append(t)
    g = pd.concat(frames, ignore_index=True).groupby(["scenario", "policy", "controller", "task_id"], sort=True)
    want = g["latency_ms"].agg(latency_mean_ms="mean", latency_q10_ms=lambda x: float(np.quantile(x, 0.1)),
                               latency_q90_ms=lambda x: float(np.quantile(x, 0.9)), n_seeds="count")
    want["stutter_rate"] = g["stutter"].mean()
    return want.reset_index()


def test_trajectories_equal_the_per_trace_pandas_reference(tmp_path):
    """The vectorised trajectories table equals the reference construction, also when a run's
    key is missing (pandas leaves such rows out of every group)."""
    import pandas as pd

    from e3.analysis.aggregate import trajectories

    rng = random.Random(11)
    runs, paths = [], []
    for scenario in ("drift", "semantic"):
        for policy in ("e3", "oracle"):
            for seed in (1, 2, 3):
                path = tmp_path / f"{scenario}_{policy}_{seed}.parquet"
                with TraceWriter(path) as w:
                    for r in _rows(40 if seed < 3 else 35, rng):  # the last seed is shorter
                        w.add(*r)
                runs.append({"scenario": scenario, "policy": policy, "controller": "none", "seed": seed})
                paths.append(path)
    runs = pd.DataFrame(runs)
    for case in ("complete", "a missing key"):
        if case == "a missing key":
            runs.loc[0, "controller"] = None
        want = _reference_trajectories(paths, runs)
        got = trajectories(paths, runs)
        assert list(got.columns) == list(want.columns), case
        assert got.to_csv(index=False) == want.to_csv(index=False), case
    with pytest.raises(ValueError, match="11 traces for 12 runs"):
        trajectories(paths[:-1], runs)
    with pytest.raises(ValueError, match="no traces"):
        trajectories([], runs.iloc[:0])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1e8, allow_nan=False), min_size=1, max_size=400))
def test_one_percentile_call_equals_three(latencies):
    """summarize takes p50, p95 and p99 from one np.percentile call: the same bits as three calls."""
    x = np.array(latencies)
    assert np.percentile(x, (50, 95, 99)).tobytes() == np.array([np.percentile(x, q) for q in (50, 95, 99)]).tobytes()
