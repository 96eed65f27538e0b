"""Readers of LLM request traces: arrival times (ms) and input/output token counts per request.

Formats (``FORMATS``):

* ``azure``: the Azure LLM inference trace 2023 (Patel et al., Splitwise, ISCA 2024;
  github.com/Azure/AzurePublicDataset, ``data/AzureLLMInferenceTrace_{conv,code}.csv``): columns
  ``TIMESTAMP,ContextTokens,GeneratedTokens``. Traps handled: timestamps carry 7 fractional
  digits (100 ns; Python's ``datetime.strptime`` accepts only 6, so they are parsed by pandas at
  ns resolution) and no time zone (read as naive wall-clock; only differences are used); lines
  end in CRLF and the last line has no newline (so ``wc -l`` counts one request fewer); rows are
  sorted by time but several may share one timestamp (kept, in file order).
* ``burstgpt``: BurstGPT (Wang et al., arXiv 2401.17644; github.com/HPMLL/BurstGPT): columns
  ``Timestamp`` (seconds from the trace start), ``Request tokens``, ``Response tokens`` (others,
  e.g. ``Model``, ``Total tokens``, ``Log Type``, are ignored). Failed requests carry 0 response
  tokens; they are kept (a prefill-only request), as the trace records them.
* ``mooncake``: Mooncake (Qin et al., FAST 2025; github.com/kvcache-ai/Mooncake): JSON lines with
  ``timestamp`` (ms since the first request), ``input_length``, ``output_length`` (``hash_ids``
  and other keys are ignored).

Every reader returns a :class:`RequestTrace` whose first arrival is at 0 ms. Bad input raises
:class:`e3.errors.InputError` naming the file, the line (1-based, header included), the field and
the value: a missing field, an empty or non-numeric value, NaN or infinity, a negative or
fractional token count, or a timestamp earlier than the previous row's.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from e3.errors import InputError

#: format name -> (time column, input-token column, output-token column)
COLUMNS: dict[str, tuple[str, str, str]] = {
    "azure": ("TIMESTAMP", "ContextTokens", "GeneratedTokens"),
    "burstgpt": ("Timestamp", "Request tokens", "Response tokens"),
    "mooncake": ("timestamp", "input_length", "output_length"),
}
FORMATS = tuple(COLUMNS)


@dataclass(frozen=True, eq=False)
class RequestTrace:
    """One request trace, in file order.

    Attributes:
        arrival_ms: float64 array, shape (n,): arrival time of each request in ms after the
            first request (non-decreasing; ``arrival_ms[0] == 0``).
        input_tokens: int64 array, shape (n,): prompt (context) tokens of each request.
        output_tokens: int64 array, shape (n,): generated tokens of each request.
        source: the file read.
        format: one of :data:`FORMATS`.
    """

    arrival_ms: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    source: str
    format: str

    def __len__(self) -> int:
        return len(self.arrival_ms)

    @property
    def span_s(self) -> float:
        """Time of the last arrival in seconds (0 for an empty trace). A file's first arrival is
        at 0, so this is its span; a window's times start at the window's start."""
        return float(self.arrival_ms[-1] / 1000.0) if len(self) else 0.0

    def window(self, start_s: float = 0.0, duration_s: float | None = None) -> RequestTrace:
        """Requests arriving in [start_s, start_s + duration_s) s after the first request, with
        their arrival times re-based so that ``start_s`` is 0 ms. ``duration_s=None``: to the end.
        """
        lo = start_s * 1000.0
        keep = self.arrival_ms >= lo
        if duration_s is not None:
            keep &= self.arrival_ms < lo + duration_s * 1000.0
        return RequestTrace(self.arrival_ms[keep] - lo, self.input_tokens[keep], self.output_tokens[keep],
                            self.source, self.format)


def _csv_lines(n: int) -> np.ndarray:
    return np.arange(n) + 2  # one header line; file lines are 1-based


#: The largest token count a trace row may carry: far above any context window (10^9 tokens), and
#: far below where int64 and the simulator's float arithmetic lose meaning (issue 33: 1e30 wrapped to
#: a negative count and a negative utilisation).
MAX_TOKENS = 10**9


def _tokens(path: Path, field: str, raw: pd.Series, lines: np.ndarray) -> np.ndarray:
    # Token counts: finite, non-negative integers up to MAX_TOKENS; the first bad row is reported by line.
    num = pd.to_numeric(raw, errors="coerce").astype("float64").to_numpy()
    bad = ~np.isfinite(num) | (num < 0) | (num != np.floor(num)) | (num > MAX_TOKENS)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        v = raw.iloc[i]
        why = ("is empty" if pd.isna(v) or str(v).strip() == "" else
               f"is above {MAX_TOKENS:,} tokens" if np.isfinite(num[i]) and num[i] > MAX_TOKENS else
               "must be a finite, non-negative whole number of tokens")
        raise InputError(path, f"line {lines[i]}: {field}", why, None if pd.isna(v) else v)
    return num.astype(np.int64)


def _check_sorted(path: Path, field: str, t_ms: np.ndarray, raw, lines: np.ndarray) -> None:
    back = np.flatnonzero(np.diff(t_ms) < 0)
    if back.size:
        i = int(back[0]) + 1
        raise InputError(path, f"line {lines[i]}: {field}",
                         f"earlier than the previous row's ({raw[i - 1]!r}); rows must be sorted by time", raw[i])


def _read_csv(path: Path, fmt: str) -> pd.DataFrame:
    cols = COLUMNS[fmt]
    if not path.is_file():
        raise InputError(path, "(file)", f"{fmt} trace not found")
    try:
        # All as text, blank lines kept as empty rows: every value is checked here, by line.
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:  # a 0-byte or whitespace-only file: no header at all
        raise InputError(path, "(file)", f"empty file; {fmt} traces start with the header {','.join(cols)}") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(path, "(file)", f"not a readable CSV: {exc}") from exc
    df.columns = [c.strip() for c in df.columns]
    for c in cols:
        if c not in df.columns:
            raise InputError(path, c, f"missing column; {fmt} traces have {list(cols)}; found {list(df.columns)}")
    if df.empty:
        raise InputError(path, "(file)", "no requests")
    return df.replace("", np.nan)


def read_azure_llm(path: str | Path) -> RequestTrace:
    """Read an Azure LLM inference trace 2023 CSV (conversation or code).

    Args:
        path: ``AzureLLMInferenceTrace_{conv,code}.csv``.

    Returns:
        The trace; arrival times relative to the first request, at 100 ns resolution.

    Raises:
        InputError: missing file or column, an unparseable or unsorted ``TIMESTAMP``, or a bad
            token count (see the module docstring).
    """
    path = Path(path)
    tcol, icol, ocol = COLUMNS["azure"]
    df = _read_csv(path, "azure")
    raw_t = df[tcol]
    # ISO 8601 at ns resolution: 7 fractional digits kept, whole seconds (no fraction) accepted too
    try:
        ts = pd.to_datetime(raw_t.str.strip(), format="ISO8601", errors="coerce")
    except ValueError as exc:  # e.g. rows with different UTC offsets: pandas refuses to mix them
        raise InputError(path, f"lines 2-{len(df) + 1}: {tcol}",
                         f"timestamps mix time zones or UTC offsets ({exc}); give every row the same zone, or none",
                         None) from None
    if ts.isna().any():
        i = int(np.flatnonzero(ts.isna().to_numpy())[0])
        v = raw_t.iloc[i]
        raise InputError(path, f"line {i + 2}: {tcol}",
                         "is empty" if pd.isna(v) else "not a timestamp 'YYYY-MM-DD HH:MM:SS.fffffff'",
                         None if pd.isna(v) else v)
    ns = ts.to_numpy().astype("datetime64[ns]").astype(np.int64)
    t_ms = (ns - ns[0]) / 1e6
    lines = _csv_lines(len(df))
    _check_sorted(path, tcol, t_ms, raw_t.to_numpy(), lines)
    return RequestTrace(t_ms.astype(np.float64), _tokens(path, icol, df[icol], lines),
                        _tokens(path, ocol, df[ocol], lines), str(path), "azure")


def _times_ms(path: Path, field: str, raw: pd.Series, lines: np.ndarray, scale_to_ms: float) -> np.ndarray:
    # Arrival times in the file's unit, times scale_to_ms, re-based to the first row.
    num = pd.to_numeric(raw, errors="coerce").astype("float64").to_numpy()
    bad = ~np.isfinite(num) | (num < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        v = raw.iloc[i]
        raise InputError(path, f"line {lines[i]}: {field}",
                         "is empty" if pd.isna(v) else "must be a finite, non-negative time", None if pd.isna(v) else v)
    t_ms = num * scale_to_ms
    _check_sorted(path, field, t_ms, raw.to_numpy(), lines)
    return t_ms - t_ms[0]


def read_burstgpt(path: str | Path) -> RequestTrace:
    """Read a BurstGPT CSV (``BurstGPT_*.csv``; ``Timestamp`` in seconds).

    Raises:
        InputError: missing file or column, a bad or unsorted ``Timestamp``, or a bad token count.
    """
    path = Path(path)
    tcol, icol, ocol = COLUMNS["burstgpt"]
    df = _read_csv(path, "burstgpt")
    lines = _csv_lines(len(df))
    t_ms = _times_ms(path, tcol, df[tcol], lines, 1000.0)
    return RequestTrace(t_ms, _tokens(path, icol, df[icol], lines), _tokens(path, ocol, df[ocol], lines),
                        str(path), "burstgpt")


def read_mooncake(path: str | Path) -> RequestTrace:
    """Read a Mooncake JSONL trace (``timestamp`` in ms, ``input_length``, ``output_length``).

    Blank lines are skipped. Raises:
        InputError: missing file, a line that is not a JSON object, a missing key, or a bad
            value (NaN, ``null``, negative, fractional token count, unsorted timestamp).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "(file)", "mooncake trace not found")
    keys = COLUMNS["mooncake"]
    rows: list[tuple[object, object, object]] = []
    lines: list[int] = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(path, f"line {n}", f"not valid JSON: {exc.msg}") from exc
            if not isinstance(obj, dict):
                raise InputError(path, f"line {n}", "not a JSON object", obj)
            for k in keys:
                if k not in obj:
                    raise InputError(path, f"line {n}: {k}", f"missing key; mooncake lines have {list(keys)}")
                v = obj[k]
                if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                    raise InputError(path, f"line {n}: {k}", "must be a finite number", v)
            rows.append(tuple(obj[k] for k in keys))
            lines.append(n)
    if not rows:
        raise InputError(path, "(file)", "no requests")
    df = pd.DataFrame(rows, columns=list(keys), dtype=object)
    at = np.asarray(lines)  # the file's own line numbers (blank lines were skipped)
    t_ms = _times_ms(path, keys[0], df[keys[0]], at, 1.0)
    return RequestTrace(t_ms, _tokens(path, keys[1], df[keys[1]], at), _tokens(path, keys[2], df[keys[2]], at),
                        str(path), "mooncake")


_READERS = {"azure": read_azure_llm, "burstgpt": read_burstgpt, "mooncake": read_mooncake}


def read_request_trace(path: str | Path, fmt: str) -> RequestTrace:
    """Read ``path`` in format ``fmt`` (one of :data:`FORMATS`).

    Raises:
        InputError: unknown format, or bad input (see the format's reader).
    """
    if fmt not in _READERS:
        raise InputError(path, "format", f"unknown trace format; known: {list(FORMATS)}", fmt)
    return _READERS[fmt](path)
