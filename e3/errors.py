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


def did_you_mean(name: str, choices) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` to a misspelt ``name``
    (``difflib.get_close_matches``, cutoff 0.6), or ``""`` when none is close."""
    import difflib

    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
