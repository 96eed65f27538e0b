"""Streaming per-task trace writer: rows go to disk in batches, in task_id order.

Tasks finish out of order; the writer buffers finished tasks column by column, at their position
``task_id - base``, until every earlier task has finished, so the file is sorted by ``task_id``
while memory stays bounded by the number of tasks in flight (flat in the horizon for a stable
system). A batch is written once ``batch_rows`` contiguous rows are complete. The columns that
follow from others (``kind``, tokens and arrival from the task; ``service_ms``, ``wait_ms`` and
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


class TraceWriter:
    """Write one row per finished task to ``path`` (.parquet or .csv) with the :data:`COLUMNS`.

    Use as a context manager; rows are flushed every ``batch_rows`` (or more) contiguous rows,
    the rest on exit.

    Raises:
        ValueError: ``path`` does not end in .parquet or .csv.
        RuntimeError: on exit, a task before a finished one never finished (a gap in task_id).
    """

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
        """Write the first ``rows`` buffered rows to the file."""
        tasks = self._task[:rows]
        arrival = np.array([t.arrival_ms for t in tasks], dtype=np.float64)
        start = np.array(self._start[:rows], dtype=np.float64)
        end = np.array(self._end[:rows], dtype=np.float64)
        arrays = [
            pa.array([t.task_id for t in tasks], type=pa.int64()),
            pa.array([t.kind for t in tasks], type=pa.string()),
            pa.array([t.input_tokens for t in tasks], type=pa.int32()),
            pa.array([t.output_tokens for t in tasks], type=pa.int32()),
            pa.array(arrival),
            pa.array(self._dispatch[:rows], type=pa.float64()),
            pa.array(self._device[:rows], type=pa.string()),
            pa.array(start),
            pa.array(end),
            pa.array(end - start),      # service_ms; IEEE subtraction, as in Python
            pa.array(start - arrival),  # wait_ms
            pa.array(end - arrival),    # latency_ms
            pa.array(self._stutter[:rows], type=pa.bool_()),
            pa.array(self._redispatches[:rows], type=pa.int32()),
        ]
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=SCHEMA))

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

    def __init__(self, batch_rows: int = 65536) -> None:
        super().__init__(Path("latency_ms"), batch_rows)  # the path is never opened
        self._chunks: list[np.ndarray] = []

    def __enter__(self) -> LatencyColumn:
        return self

    def _write(self, rows: int) -> None:
        arrival = np.array([t.arrival_ms for t in self._task[:rows]], dtype=np.float64)
        end = np.array(self._end[:rows], dtype=np.float64)
        self._chunks.append(end - arrival)  # as TraceWriter._write's latency_ms

    def latency_ms(self) -> np.ndarray:
        """Task latencies in ms (``end_ms - arrival_ms``), shape (rows,), in task_id order."""
        return np.concatenate(self._chunks) if self._chunks else np.empty(0, dtype=np.float64)


class RowTraceWriter:
    """Write trace rows (tuples in ``schema``'s column order) to ``path`` (.parquet or .csv).

    The general writer for engines other than E3's (e.g. :mod:`e3.sim.serving`); E3's task trace
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
