"""Issue 10, deliverables 1 and 5: the stutter-matched reference (``oracle_avoid``) in Table 5 and
the paper comparison, and replay that answers to the committed export (never to a stale cache)."""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest

from e3.analysis.paper import claims, comparison_markdown, numbers_tex
from e3.analysis.tables import TABLE5_COLUMNS, table5, table6
from e3.config import load_config
from e3.errors import InputError
from e3.experiment.run import simulate
from e3.io import write_jsonl_atomic
from e3.llm.cache import ResponseCache, cache_key, read_export, rekey_with_model_info
from e3.llm.client import LLMCacheMiss, LLMClient, LLMSettings


@pytest.fixture(scope="module")
def cfg(repo):
    return load_config(repo / "config/config.yaml")


# --- oracle_avoid ----------------------------------------------------------------------------------
def test_oracle_avoid_never_stutters_and_equals_the_oracle_without_degradation(cfg, tmp_path):
    # semantic_overload: in `semantic` (0.2.0) the plain Oracle never picks a degraded device either
    sem = {p: simulate(cfg, "semantic_overload", p, 1, tmp_path / f"s_{p}") for p in ("oracle", "oracle_avoid")}
    assert sem["oracle"]["stutter_rate"] > 0  # the plain Oracle dispatches to degraded devices
    assert sem["oracle_avoid"]["stutter_rate"] == 0.0
    static = [pd.read_parquet(tmp_path / f"w_{p}/tasks.parquet") for p in ("oracle", "oracle_avoid")
              if simulate(cfg, "warmup_0", p, 1, tmp_path / f"w_{p}", n_tasks=100)]
    pd.testing.assert_frame_equal(static[0], static[1])


def _runs():
    rows = []
    for seed in (1, 2, 3):
        for pol, ctl, lat, stut in (("oracle", "none", 100.0, 0.1), ("oracle_avoid", "none", 125.0, 0.0),
                                    ("e3", "rules", 150.0, 0.0), ("fixed_heuristic", "none", 400.0, 0.2),
                                    ("round_robin", "none", 380.0, 0.3)):
            rows.append({"scenario": "semantic", "policy": pol, "controller": ctl, "seed": seed, "n_tasks": 300,
                         "avg_latency_ms": lat + seed, "stutter_rate": stut, "controller_calls": 5,
                         "tool_calls": 9, "llm_fallbacks": 0})
    return pd.DataFrame(rows)


def test_table5_gives_both_gaps_and_stutter_for_every_row():
    t5 = table5(_runs())
    assert list(t5.columns) == ["scenario", *TABLE5_COLUMNS]
    r = t5.set_index("policy")
    assert r.loc["oracle", "vs_oracle_pct"] == 0 and r.loc["oracle_avoid", "vs_oracle_avoid_pct"] == 0
    assert r.loc["e3", "vs_oracle_pct"] == pytest.approx(100 * (152 / 102 - 1))
    assert r.loc["e3", "vs_oracle_avoid_pct"] == pytest.approx(100 * (152 / 127 - 1))
    assert r.loc["oracle", "stutter_pct"] == pytest.approx(10.0)
    assert t5["stutter_pct"].notna().all()
    no_ref = table5(_runs()[lambda d: d["policy"] != "oracle_avoid"])  # a reference not run: empty gap
    assert no_ref["vs_oracle_avoid_pct"].isna().all()


def test_paper_comparison_reads_every_claim_against_both_references():
    t5 = table5(_runs())
    t6 = table6(_runs(), t5)
    pv = {"source": "test", "table5": {"semantic": {"fixed_heuristic": 16000, "round_robin": 17000, "e3": 5300,
                                                    "oracle": 4931}},
          "table6": {}}
    md = comparison_markdown(t5, t6, pv, paper_controller="rules")
    assert "does not state which Oracle" in md
    assert "ours vs avoiding Oracle" in md and "Oracle (avoids degraded devices" in md
    ours = {(r["setting"], r["policy"]): r for _, r in t5.iterrows() if r["policy"] != "e3" or r["controller"] == "rules"}
    texts = [c for c, _, _ in claims(ours, t6, "rules")]
    assert any("of the Oracle in the dynamic" in c for c in texts)
    assert any("of the avoiding Oracle in the dynamic" in c for c in texts)
    assert "Gapavoid" in numbers_tex(t5, t6) and "Stutterpct" in numbers_tex(t5, t6)


# --- replay answers to the committed file --------------------------------------------------------
def _req(**kw):
    r = {"model": "openai/m", "api_base": None, "messages": [{"role": "user", "content": "x"}], "tools": None,
         "temperature": 0.0, "seed": 0, "max_tokens": 10, "response_format": None, "prompt_version": "p1",
         "model_info": {"gguf_sha256": "aa"}}
    r.update(kw)
    return r


def _reply(text):
    return {"content": text, "tool_calls": [], "usage": {}}


def test_the_key_includes_the_model_identity():
    assert cache_key(_req()) != cache_key(_req(model_info={"gguf_sha256": "bb"}))


def test_replay_answers_from_the_file_not_from_a_stale_cache(tmp_path):
    req = _req()
    key = cache_key(req)
    stale = ResponseCache(tmp_path / "cache")
    stale.put(key, {"request": req, "response": _reply("stale")})
    stale.close()
    write_jsonl_atomic(tmp_path / "r.jsonl", [{"key": key, "request": req, "response": _reply("committed")}])
    s = LLMSettings(model="openai/m", api_base=None, max_tokens=10, mode="replay", cache_dir=str(tmp_path / "cache"),
                    frozen=str(tmp_path / "r.jsonl"), model_info={"gguf_sha256": "aa"})
    c = LLMClient(s, tmp_path)
    assert c.complete(req["messages"], prompt_version="p1").content == "committed"
    # a key only in the cache is a miss: replay is a function of the file
    other = _req(messages=[{"role": "user", "content": "only cached"}])
    ResponseCache(tmp_path / "cache").put(cache_key(other), {"request": other, "response": _reply("x")})
    with pytest.raises(LLMCacheMiss):
        LLMClient(s, tmp_path).complete(other["messages"], prompt_version="p1")


def test_import_replaces_an_entry_that_differs_from_the_file(tmp_path):
    req = _req()
    key = cache_key(req)
    c = ResponseCache(tmp_path / "cache")
    c.put(key, {"request": req, "response": _reply("stale")})
    write_jsonl_atomic(tmp_path / "r.jsonl", [{"key": key, "request": req, "response": _reply("committed")}])
    assert c.import_jsonl(tmp_path / "r.jsonl") == 1
    assert c.get(key)["response"]["content"] == "committed"
    assert c.import_jsonl(tmp_path / "r.jsonl") == 0


def test_rekey_migrates_an_export_without_rerecording(tmp_path):
    import hashlib

    old_req = {k: v for k, v in _req().items() if k != "model_info"}
    blob = json.dumps(old_req, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    old_key = hashlib.sha256(blob.encode()).hexdigest()
    row = {"key": old_key, "request": old_req, "response": _reply("r"), "meta": {"model_info": {"gguf_sha256": "aa"}}}
    write_jsonl_atomic(tmp_path / "r.jsonl", [row])
    with pytest.raises(InputError, match="does not match"):
        read_export(tmp_path / "r.jsonl")  # an old export is refused, not silently trusted
    assert rekey_with_model_info(tmp_path / "r.jsonl") == 1
    (key, entry), = read_export(tmp_path / "r.jsonl").items()
    assert key == cache_key(_req()) and entry["response"]["content"] == "r"
    write_jsonl_atomic(tmp_path / "n.jsonl", [{**row, "meta": {}}])
    with pytest.raises(InputError, match="model_info"):
        rekey_with_model_info(tmp_path / "n.jsonl")


def test_a_changed_model_identity_misses_in_replay(cfg, tmp_path, repo):
    c = copy.deepcopy(cfg)
    c["controllers"]["llm"].update({"cache_dir": str(tmp_path / "cache"),
                                    "frozen": str(repo / "results/llm/responses.jsonl"),
                                    "model_info": {**c["controllers"]["llm"]["model_info"], "gguf_sha256": "0" * 64}})
    with pytest.raises(LLMCacheMiss, match="model_info"):
        simulate(c, "semantic", "e3", 1, tmp_path / "x", policy_overrides={"controller": "llm"})
