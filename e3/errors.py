"""Error types that name the file, the field and the offending value."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class E3Error(Exception):
    """Base class of every error e3 raises on purpose (bad input, bad config, missing data)."""


class InputError(E3Error):
    """Bad input data: names the file, the field and the value.

    Args:
        path: the file that holds the bad input (or a description of the source).
        field: the field, key or line label that is wrong or missing.
        message: what is wrong, in words.
        value: the offending value, if there is one.
    """

    def __init__(self, path: str | Path, field: str, message: str, value: Any = ...) -> None:
        self.path = str(path)
        self.field = field
        self.value = value
        shown = "" if value is ... else f" (value: {value!r})"
        super().__init__(f"{self.path}: field {field!r}: {message}{shown}")


class ConfigError(E3Error):
    """A configuration or scenario file that does not validate."""
