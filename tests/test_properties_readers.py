"""Issue 33: every trace reader, given random mutations of a valid file, either reads it or raises
an E3Error naming the file and field; never another exception and never a negative or non-finite
number (Hypothesis; example counts from the profile in tests/conftest.py)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from e3.errors import E3Error
from e3.workload.readers import read_request_trace

VALID = {
    "azure": ("AzureLLMInferenceTrace_conv.csv",
              "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n"
              "2023-11-16 18:15:50.9951690,396,109\n2023-11-16 18:15:51.0000000,879,12\n"),
    "burstgpt": ("BurstGPT_1.csv",
                 "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
                 "5,ChatGPT,472,18,490,Conversation log\n45,ChatGPT,1087,0,1087,Conversation log\n"
                 "118,GPT-4,417,276,693,Conversation log\n"),
    "mooncake": ("trace.jsonl",
                 "".join(json.dumps({"timestamp": t, "input_length": i, "output_length": o}) + "\n"
                         for t, i, o in ((0, 100, 7), (500, 400, 8), (1500, 9000, 30)))),
}
NASTY = ["", "-1", "1e30", "nan", "inf", "-inf", "3.5", "abc", "\x00", "9" * 40, "2023-13-45 99:99:99", " ", '"', ","]


@st.composite
def mutated(draw):
    fmt = draw(st.sampled_from(sorted(VALID)))
    name, text = VALID[fmt]
    lines = text.splitlines()
    kind = draw(st.sampled_from(["cell", "drop_line", "swap_lines", "truncate", "dup_line", "header"]))
    if kind == "cell" and fmt != "mooncake":
        i = draw(st.integers(1, len(lines) - 1))
        cells = lines[i].split(",")
        j = draw(st.integers(0, len(cells) - 1))
        cells[j] = draw(st.sampled_from(NASTY) | st.text(max_size=6))
        lines[i] = ",".join(cells)
    elif kind == "cell":
        i = draw(st.integers(0, len(lines) - 1))
        row = json.loads(lines[i])
        key = draw(st.sampled_from(sorted(row)))
        row[key] = draw(st.sampled_from([None, -1, 1e30, 3.5, "x", [], {}, True, 10**40]))
        lines[i] = json.dumps(row)
    elif kind == "drop_line":
        lines.pop(draw(st.integers(0, len(lines) - 1)))
    elif kind == "swap_lines" and len(lines) > 2:
        i = draw(st.integers(1 if fmt != "mooncake" else 0, len(lines) - 2))
        lines[i], lines[i + 1] = lines[i + 1], lines[i]
    elif kind == "truncate":
        body = "\n".join(lines)
        return fmt, name, body[:draw(st.integers(0, len(body)))]
    elif kind == "dup_line":
        i = draw(st.integers(0, len(lines) - 1))
        lines.insert(i, lines[i])
    elif kind == "header" and fmt != "mooncake":
        lines[0] = lines[0].replace(lines[0].split(",")[draw(st.integers(0, 2))], draw(st.sampled_from(["", "X"])))
    return fmt, name, "\n".join(lines) + "\n"


@given(case=mutated())
def test_mutated_traces_are_read_or_refused_with_an_e3_error(case):
    fmt, name, text = case
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / name
        p.write_bytes(text.encode("utf-8", errors="replace"))
        try:
            tr = read_request_trace(p, fmt)
        except E3Error as exc:
            assert str(p) in str(exc) or p.name in str(exc)
            return
        for col in (tr.input_tokens, tr.output_tokens):
            assert (col >= 0).all()
        assert np.isfinite(tr.arrival_ms).all() and (np.diff(tr.arrival_ms) >= 0).all()
