"""Streaming per-task trace writer: rows go to disk in batches, in task_id order.

Tasks finish out of order; a small reorder buffer holds finished rows until every earlier task
has finished, so the file is sorted by ``task_id`` while memory stays bounded by the number of
tasks in flight (flat in the horizon for a stable system).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

SCHEMA = pa.schema([
    ("task_id", pa.int64()), ("kind", pa.string()), ("input_tokens", pa.int32()),
    ("output_tokens", pa.int32()), ("arrival_ms", pa.float64()), ("dispatch_ms", pa.float64()),
    ("device", pa.string()), ("start_ms", pa.float64()), ("end_ms", pa.float64()),
    ("service_ms", pa.float64()), ("wait_ms", pa.float64()), ("latency_ms", pa.float64()),
    ("stutter", pa.bool_()), ("redispatches", pa.int32()),
])
COLUMNS = SCHEMA.names


class TraceWriter:
    """Write trace rows (tuples in the schema's column order) to ``path`` (.parquet or .csv).

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
