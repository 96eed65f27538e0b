"""Trace readers: a few synthetic lines per format, every bad-row error, and the real Azure files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from e3.errors import InputError
from e3.workload.readers import read_azure_llm, read_burstgpt, read_mooncake, read_request_trace

AZURE_DIR = "azure-llm-inference-2023"


AZURE = ("TIMESTAMP,ContextTokens,GeneratedTokens\r\n"
         "2023-11-16 18:15:46.6805900,374,44\r\n"
         "2023-11-16 18:15:46.6805900,396,109\r\n"       # a shared timestamp: kept, in file order
         "2023-11-16 18:15:51.2224671,14050,1000")        # 7 fractional digits, no final newline


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode())
    return p


def test_azure_synthetic_lines(tmp_path):
    tr = read_azure_llm(write(tmp_path, "a.csv", AZURE))
    assert len(tr) == 3
    np.testing.assert_allclose(tr.arrival_ms, [0.0, 0.0, 4541.8771])  # 100 ns resolution kept
    assert tr.input_tokens.tolist() == [374, 396, 14050]
    assert tr.output_tokens.tolist() == [44, 109, 1000]
    assert tr.input_tokens.dtype == np.int64 and tr.arrival_ms.dtype == np.float64


@pytest.mark.parametrize("row, field, value", [
    ("2023-11-16 18:15:52.0000000,12,nan", "GeneratedTokens", "nan"),
    ("2023-11-16 18:15:52.0000000,12,NaN", "GeneratedTokens", "NaN"),
    ("2023-11-16 18:15:52.0000000,,5", "ContextTokens", None),
    ("2023-11-16 18:15:52.0000000,-3,5", "ContextTokens", "-3"),
    ("2023-11-16 18:15:52.0000000,3.5,5", "ContextTokens", "3.5"),
    ("2023-11-16 18:15:52.0000000,12,inf", "GeneratedTokens", "inf"),
    ("yesterday,12,5", "TIMESTAMP", "yesterday"),
    ("2023-11-16 18:15:40.0000000,12,5", "TIMESTAMP", "2023-11-16 18:15:40.0000000"),  # unsorted
])
def test_azure_bad_row_names_file_line_field_value(tmp_path, row, field, value):
    p = write(tmp_path, "bad.csv", AZURE + "\r\n" + row + "\r\n")
    with pytest.raises(InputError) as ei:
        read_azure_llm(p)
    e = ei.value
    assert e.path == str(p) and e.field == f"line 5: {field}"
    assert e.value == value if value is not None else e.value is None
    assert str(p) in str(e) and field in str(e)


def test_azure_timestamp_without_fraction(tmp_path):
    tr = read_azure_llm(write(tmp_path, "w.csv", AZURE + "\r\n2023-11-16 18:15:52,1,2\r\n"))
    assert tr.arrival_ms[-1] == pytest.approx(5319.41)


def test_azure_missing_column_and_blank_line(tmp_path):
    with pytest.raises(InputError, match="GeneratedTokens.*missing column"):
        read_azure_llm(write(tmp_path, "c.csv", "TIMESTAMP,ContextTokens\n2023-11-16 18:15:46.1,3\n"))
    with pytest.raises(InputError, match="line 3: TIMESTAMP.*is empty"):
        read_azure_llm(write(tmp_path, "b.csv", AZURE.replace("\r\n2023-11-16 18:15:46.6805900,396", "\r\n\r\n2023-11-16 18:15:46.6805900,396")))
    with pytest.raises(InputError, match="not found"):
        read_azure_llm(tmp_path / "absent.csv")


def test_burstgpt_synthetic_lines(tmp_path):
    text = ("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
            "5,ChatGPT,472,18,490,Conversation log\n"
            "45,ChatGPT,1087,0,1087,Conversation log\n"      # a failed request: 0 response tokens, kept
            "45.5,GPT-4,417,276,693,API log\n")
    tr = read_burstgpt(write(tmp_path, "b.csv", text))
    assert tr.arrival_ms.tolist() == [0.0, 40000.0, 40500.0]
    assert tr.input_tokens.tolist() == [472, 1087, 417] and tr.output_tokens.tolist() == [18, 0, 276]
    with pytest.raises(InputError) as ei:
        read_burstgpt(write(tmp_path, "bad.csv", text + "46,GPT-4,NaN,3,3,API log\n"))
    assert ei.value.field == "line 5: Request tokens" and ei.value.value == "NaN"
    with pytest.raises(InputError, match="line 5: Timestamp.*earlier"):
        read_burstgpt(write(tmp_path, "bad2.csv", text + "44,GPT-4,1,3,4,API log\n"))


def test_mooncake_synthetic_lines(tmp_path):
    text = ('{"timestamp": 0, "input_length": 6755, "output_length": 500, "hash_ids": [0, 1]}\n'
            '{"timestamp": 0, "input_length": 7319, "output_length": 490, "hash_ids": [0, 14]}\n'
            '\n'
            '{"timestamp": 3052, "input_length": 7234, "output_length": 794, "hash_ids": [0, 28]}\n')
    tr = read_request_trace(write(tmp_path, "m.jsonl", text), "mooncake")
    assert tr.arrival_ms.tolist() == [0.0, 0.0, 3052.0]
    assert tr.input_tokens.tolist() == [6755, 7319, 7234] and tr.output_tokens.tolist() == [500, 490, 794]
    for line, field, value in [('{"timestamp": 4000, "input_length": NaN, "output_length": 1}', "input_length", "nan"),
                               ('{"timestamp": 4000, "input_length": 5}', "output_length", None),
                               ('{"timestamp": null, "input_length": 5, "output_length": 1}', "timestamp", None),
                               ('{"timestamp": 4000, "input_length": 5, "output_length": -1}', "output_length", -1),
                               ('{"timestamp": 1000, "input_length": 5, "output_length": 1}', "timestamp", 1000)]:
        with pytest.raises(InputError) as ei:
            read_mooncake(write(tmp_path, "bad.jsonl", text + line + "\n"))
        assert ei.value.field == f"line 5: {field}", (line, ei.value)
        if value == "nan":
            assert np.isnan(ei.value.value)
        else:
            assert ei.value.value == value or (value is None and ei.value.value in (None, ...))
    with pytest.raises(InputError, match="line 2.*not valid JSON"):
        read_mooncake(write(tmp_path, "bad.jsonl", text[:80] + "\n{oops\n"))


def test_unknown_format(tmp_path):
    with pytest.raises(InputError, match="unknown trace format"):
        read_request_trace(tmp_path / "x", "sharegpt")


def test_window_rebases_arrivals(tmp_path):
    tr = read_azure_llm(write(tmp_path, "a.csv", AZURE))
    w = tr.window(1.0, 10.0)
    assert len(w) == 1 and w.arrival_ms.tolist() == pytest.approx([3541.8771])
    assert len(tr.window(0.0, 4.0)) == 2 and len(tr.window(5.0)) == 0


@pytest.mark.parametrize("name, n, span_s, in_mean, out_max", [
    ("conv", 19366, 3501.72, 1154.70, 1000),
    ("code", 8819, 3435.95, 2047.85, 1899),
])
def test_real_azure_files(traces_mirror, name, n, span_s, in_mean, out_max):
    tr = read_azure_llm(traces_mirror / AZURE_DIR / f"AzureLLMInferenceTrace_{name}.csv")
    # 19,366 / 8,819 data rows: `wc -l` reports one fewer since the last line has no newline.
    assert len(tr) == n
    assert tr.span_s == pytest.approx(span_s, abs=0.01)
    assert tr.input_tokens.mean() == pytest.approx(in_mean, abs=0.01)
    assert tr.output_tokens.max() == out_max
    assert (np.diff(tr.arrival_ms) >= 0).all()


@pytest.mark.parametrize("value", ["1e30", "9223372036854775808", "1000000001"])
def test_token_counts_beyond_the_bound_are_refused_by_line(tmp_path, value):
    """Issue 33, defect 7: a token count beyond int64 wrapped to a negative count."""
    from e3.errors import InputError
    from e3.workload.readers import read_mooncake

    p = tmp_path / "m.jsonl"
    p.write_text('{"timestamp": 0, "input_length": 10, "output_length": 5}\n'
                 f'{{"timestamp": 5, "input_length": {value}, "output_length": 5}}\n')
    with pytest.raises(InputError, match=r"line 2.*input_length.*above 1,000,000,000 tokens"):
        read_mooncake(p)


def test_mixed_time_zones_in_an_azure_trace_are_an_input_error(tmp_path):
    """Issue 33, defect 11: pandas' ValueError escaped as a traceback."""
    from e3.errors import InputError
    from e3.workload.readers import read_azure_llm

    p = tmp_path / "AzureLLMInferenceTrace_conv.csv"
    p.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900+00:00,374,44\n"
                 "2023-11-16 18:15:50.9951690+02:00,396,109\n")
    with pytest.raises(InputError, match=r"TIMESTAMP.*mix time zones"):
        read_azure_llm(p)
