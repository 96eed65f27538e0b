"""Issue 33, defect 12: two runs aimed at one folder at once, and SIGTERM of `e3 simulate`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from e3.errors import E3Error
from e3.io import staged_run_dir


def test_a_second_run_into_the_same_folder_at_once_fails_clearly(tmp_path):
    out = tmp_path / "runs" / "seed1"
    with staged_run_dir(out) as staging:
        (staging / "summary.json").write_text("{}")
        with pytest.raises(E3Error, match="another e3 run is writing this folder now"):
            with staged_run_dir(out):
                pass
    assert (out / "summary.json").is_file()
    assert not list(out.parent.glob(".seed1.*"))  # no lock file or staging folder left behind
    with staged_run_dir(out) as staging:  # the lock was released
        (staging / "summary.json").write_text("{}")


@pytest.mark.slow
def test_sigterm_of_e3_simulate_leaves_no_partial_folder(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc = subprocess.Popen([sys.executable, "-m", "e3.cli", "simulate", "--scenario", "warmup_0", "--policy",
                             "e3", "--seed", "1", "--tasks", "400000", "--quiet", "--out", str(out)],
                            env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not list(tmp_path.glob(".run.*.partial")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert not list(tmp_path.glob(".run*")) and not out.exists()
