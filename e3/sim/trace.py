"""Streaming per-task trace writer: rows go to disk in batches, in task_id order.

Tasks finish out of order; the writer buffers finished tasks column by column, at their position
``task_id - base``, until every earlier task has finished, so the file is sorted by ``task_id``
while the row buffers stay bounded by the number of tasks in flight (flat in the horizon for a
stable system). The one column kept for the whole run is ``latency_ms`` (8 bytes per task), from
which the run's summary is computed. A batch is written once ``batch_rows`` contiguous rows are
complete. The columns that follow from others (``kind``, tokens and arrival from the task; ``service_ms``, ``wait_ms`` and
``latency_ms`` as differences of times) are built per batch, not per task.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from e3.sim.workload import TaskView

SCHEMA = pa.schema([
    ("task_id", pa.int64()), ("kind", pa.string()), ("input_tokens", pa.int32()),
    ("output_tokens", pa.int32()), ("arrival_ms", pa.float64()), ("dispatch_ms", pa.float64()),
    ("device", pa.string()), ("start_ms", pa.float64()), ("end_ms", pa.float64()),
    ("service_ms", pa.float64()), ("wait_ms", pa.float64()), ("latency_ms", pa.float64()),
    ("stutter", pa.bool_()), ("redispatches", pa.int32()),
])
COLUMNS = SCHEMA.names


# pyarrow imports pandas (about 0.3 s of CPU) the first time ``pa.array`` converts anything,
# through its pandas shim. A simulation job needs no pandas, so the E3 trace writer builds its
# columns from numpy buffers instead: the same arrays (``Array.equals``), so the same file bytes.
_NUMPY_DTYPE = {pa.int32(): np.dtype(np.int32), pa.int64(): np.dtype(np.int64), pa.float64(): np.dtype(np.float64)}


def fixed_width_array(values: np.ndarray, type_: pa.DataType) -> pa.Array:
    """A pyarrow array of ``type_`` (int32, int64, float64) over ``values``' buffer, no nulls.

    Args:
        values: 1-d array whose dtype is ``type_``'s (e.g. float64 for ``pa.float64()``).

    Raises:
        ValueError: ``values`` is not 1-d or its dtype is not ``type_``'s.
    """
    if values.ndim != 1 or _NUMPY_DTYPE.get(type_) != values.dtype:
        raise ValueError(f"fixed_width_array: need a 1-d {type_} array, got {values.dtype} of shape {values.shape}")
    return pa.Array.from_buffers(type_, len(values), [None, pa.py_buffer(np.ascontiguousarray(values))])


def string_array(values: list[str]) -> pa.Array:
    """A pyarrow ``string`` array of ``values`` (UTF-8, int32 offsets, no nulls)."""
    data = [v.encode() for v in values]
    offsets = np.zeros(len(data) + 1, dtype=np.int32)
    np.cumsum([len(b) for b in data], out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), len(data), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))])


def bool_array(values: list[bool]) -> pa.Array:
    """A pyarrow ``bool`` array of ``values`` (bit-packed, least significant bit first, no nulls)."""
    bits = np.packbits(np.asarray(values, dtype=bool), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])


class TraceWriter:
    """Write one row per finished task to ``path`` (.parquet or .csv) with the :data:`COLUMNS`.

    Use as a context manager; rows are flushed every ``batch_rows`` (or more) contiguous rows,
    the rest on exit.

    Raises:
        ValueError: ``path`` does not end in .parquet or .csv.
        RuntimeError: on exit, a task before a finished one never finished (a gap in task_id).
    """

    writes_file = True  # False in LatencyColumn

    def __init__(self, path: str | Path, batch_rows: int = 65536) -> None:
        self.path = Path(path)
        self.batch_rows = batch_rows
        self._base = 0   # task_id held at position 0 of the column buffers
        self._next = 0   # lowest task_id not finished yet
        # One list per buffered column; None in ``_task`` marks a task not finished yet.
        self._task: list[TaskView | None] = []
        self._dispatch: list[float] = []
        self._device: list[str] = []
        self._start: list[float] = []
        self._end: list[float] = []
        self._stutter: list[bool] = []
        self._redispatches: list[int] = []
        self._cols = (self._task, self._dispatch, self._device, self._start, self._end, self._stutter,
                      self._redispatches)
        self._latency_chunks: list[np.ndarray] = []
        self._writer = None
        self.rows_written = 0

    def __enter__(self) -> TraceWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.suffix == ".parquet":
            self._writer = pq.ParquetWriter(self.path, SCHEMA, compression="zstd")
        elif self.path.suffix == ".csv":
            self._writer = pacsv.CSVWriter(self.path, SCHEMA)
        else:
            raise ValueError(f"{self.path}: trace must end in .parquet or .csv")
        return self

    def add(self, task: TaskView, dispatch_ms: float, device: str, start_ms: float, end_ms: float,
            stutter: bool, redispatches: int) -> None:
        """Add one finished task (times in simulated ms; ``service_ms = end_ms - start_ms``,
        ``wait_ms = start_ms - arrival_ms``, ``latency_ms = end_ms - arrival_ms`` are derived)."""
        tasks = self._task
        i = task.task_id - self._base
        n = len(tasks)
        if i == n:  # the common case: tasks finish in arrival order
            tasks.append(task)
            self._dispatch.append(dispatch_ms)
            self._device.append(device)
            self._start.append(start_ms)
            self._end.append(end_ms)
            self._stutter.append(stutter)
            self._redispatches.append(redispatches)
        else:
            if i > n:
                for col in self._cols:
                    col.extend([None] * (i + 1 - n))
            tasks[i] = task
            self._dispatch[i] = dispatch_ms
            self._device[i] = device
            self._start[i] = start_ms
            self._end[i] = end_ms
            self._stutter[i] = stutter
            self._redispatches[i] = redispatches
        if task.task_id == self._next:
            j, n = i + 1, len(tasks)
            while j < n and tasks[j] is not None:
                j += 1
            self._next = self._base + j
            if j >= self.batch_rows:
                self._flush(j)

    def _flush(self, rows: int) -> None:
        """Write the first ``rows`` buffered rows (all finished) and drop them from the buffers."""
        if rows == 0:
            return
        self._write(rows)
        for col in self._cols:
            del col[:rows]
        self._base += rows
        self.rows_written += rows

    def _write(self, rows: int) -> None:
        """Keep the first ``rows`` buffered rows' latencies and write the rows to the file
        (:class:`LatencyColumn` writes none)."""
        tasks = self._task[:rows]
        arrival = np.array([t.arrival_ms for t in tasks], dtype=np.float64)
        end = np.array(self._end[:rows], dtype=np.float64)
        latency = end - arrival
        self._latency_chunks.append(latency)
        if not self.writes_file:
            return
        start = np.array(self._start[:rows], dtype=np.float64)
        arrays = [
            fixed_width_array(np.array([t.task_id for t in tasks], dtype=np.int64), pa.int64()),
            string_array([t.kind for t in tasks]),
            fixed_width_array(np.array([t.input_tokens for t in tasks], dtype=np.int32), pa.int32()),
            fixed_width_array(np.array([t.output_tokens for t in tasks], dtype=np.int32), pa.int32()),
            fixed_width_array(arrival, pa.float64()),
            fixed_width_array(np.array(self._dispatch[:rows], dtype=np.float64), pa.float64()),
            string_array(self._device[:rows]),
            fixed_width_array(start, pa.float64()),
            fixed_width_array(end, pa.float64()),
            fixed_width_array(end - start, pa.float64()),      # service_ms; IEEE subtraction, as in Python
            fixed_width_array(start - arrival, pa.float64()),  # wait_ms
            fixed_width_array(latency, pa.float64()),
            bool_array(self._stutter[:rows]),
            fixed_width_array(np.array(self._redispatches[:rows], dtype=np.int32), pa.int32()),
        ]
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=SCHEMA))

    def latency_ms(self) -> np.ndarray:
        """Latencies of the rows written so far in ms (``end_ms - arrival_ms``, the file's
        ``latency_ms`` column), shape (rows,), in task_id order; all rows after exit."""
        return np.concatenate(self._latency_chunks) if self._latency_chunks else np.empty(0, dtype=np.float64)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            waiting = sum(t is not None for t in self._task[self._next - self._base:])
            if waiting:
                raise RuntimeError(f"trace has {waiting} rows after a gap at task {self._next}")
            self._flush(self._next - self._base)
        if self._writer is not None:
            self._writer.close()


class LatencyColumn(TraceWriter):
    """A :class:`TraceWriter` that writes no file and keeps only the ``latency_ms`` column, for
    runs that report just their summary (the operating-point study): the rows are buffered,
    ordered and turned into ``end_ms - arrival_ms`` exactly as the writer does, so
    :meth:`latency_ms` equals the column read back from the file it would have written.

    Use as a context manager, like the writer.

    Raises:
        RuntimeError: on exit, a task before a finished one never finished (a gap in task_id).
    """

    writes_file = False  # TraceWriter._write keeps the latencies and stops there

    def __init__(self, batch_rows: int = 65536) -> None:
        super().__init__(Path("latency_ms"), batch_rows)  # the path is never opened

    def __enter__(self) -> LatencyColumn:
        return self


class RowTraceWriter:
    """Write trace rows (tuples in ``schema``'s column order) to ``path`` (.parquet or .csv).

    The general writer for engines other than E3's (e.g. :mod:`e3.fairness.engine`); E3's task trace
    uses the faster columnar :class:`TraceWriter`.

    Use as a context manager; rows are flushed every ``batch_rows`` contiguous rows. ``schema``
    (default: the E3 task trace, :data:`SCHEMA`) lets other engines reuse the writer; the first
    column must be the 0-based contiguous row id.
    """

    def __init__(self, path: str | Path, batch_rows: int = 65536, schema: pa.Schema = SCHEMA) -> None:
        self.path = Path(path)
        self.batch_rows = batch_rows
        self.schema = schema
        self._pending: dict[int, tuple] = {}
        self._next = 0
        self._batch: list[tuple] = []
        self._writer = None
        self.rows_written = 0

    def __enter__(self) -> TraceWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.suffix == ".parquet":
            self._writer = pq.ParquetWriter(self.path, self.schema, compression="zstd")
        elif self.path.suffix == ".csv":
            self._writer = pacsv.CSVWriter(self.path, self.schema)
        else:
            raise ValueError(f"{self.path}: trace must end in .parquet or .csv")
        return self

    def add(self, row: tuple) -> None:
        """Add one finished task's row (a tuple in :data:`COLUMNS` order)."""
        self._pending[row[0]] = row
        while self._next in self._pending:
            self._batch.append(self._pending.pop(self._next))
            self._next += 1
        if len(self._batch) >= self.batch_rows:
            self._flush()

    def _flush(self) -> None:
        if not self._batch:
            return
        cols = list(zip(*self._batch, strict=True))
        table = pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(cols, self.schema, strict=True)], schema=self.schema)
        self._writer.write_table(table)
        self.rows_written += len(self._batch)
        self._batch = []

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            if self._pending:
                raise RuntimeError(f"trace has {len(self._pending)} rows after a gap at task {self._next}")
            self._flush()
        self._writer.close()
