"""One registry type for every pluggable name in e3, and the plugin loader they share.

A :class:`Registry` maps a name to a class for one kind of thing: E3 dispatch policies
(``e3.policies.base.POLICIES``), meta-controllers (``e3.agent.controllers.CONTROLLERS``), fairness
policies (``e3.fairness.policies.POLICIES``) and placement policies
(``e3.placement.policies.POLICIES``). Each registry lists the modules that define its built-ins
and imports them on first use.

Plugins extend any of them the same way (issue 32): a ``.py`` file or an importable module whose
classes use the registry's decorator, given with ``--plugin`` or ``sweep.plugins``, or a module
named by an entry point of group ``e3.policies`` in an installed distribution. A name that is
already taken by another class is an error (a plugin can never shadow a built-in: every
comparison would silently change); the same class imported twice from the same file replaces
itself.

This module imports nothing from e3 but :mod:`e3.errors`, so every layer can use it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Iterable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Generic, TypeVar

from e3.errors import ConfigError, did_you_mean

T = TypeVar("T", bound=type)

#: entry-point group whose modules are imported once per process (they register on import)
ENTRY_POINT_GROUP = "e3.policies"
_ENTRY_POINTS_LOADED = False


def class_origin(cls: type) -> tuple[str, str]:
    """(defining file, qualified name) of a class: the identity a re-import keeps."""
    try:
        path = inspect.getfile(cls)
    except TypeError:  # pragma: no cover - a class without a file (built in an interpreter)
        path = cls.__module__
    return str(Path(path).resolve()), cls.__qualname__


def load_plugins(modules: Iterable[str] = ()) -> None:
    """Import the entry points of group ``e3.policies`` (once per process) and ``modules``.

    A module may be a dotted module name or a ``.py`` file path (relative to the working folder).
    Importing registers its classes in whichever registries their decorators name.

    Raises:
        ConfigError: a ``.py`` file that does not exist, or a module that cannot be found.
    """
    global _ENTRY_POINTS_LOADED
    # Installed distributions do not change within a process, and scanning them costs ~25 ms a call.
    if not _ENTRY_POINTS_LOADED:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            ep.load()
        _ENTRY_POINTS_LOADED = True
    for m in modules:
        if m.endswith(".py"):
            if not Path(m).is_file():
                raise ConfigError(f"plugin {m!r}: file not found (relative to {Path.cwd()})")
            # One module name per file (its resolved path), registered as Python's import recipe
            # does, so a class's origin (class_origin) tells two files with the same stem apart.
            path = Path(m).resolve()
            name = f"e3_plugin_{hashlib.sha256(str(path).encode()).hexdigest()[:16]}_{path.stem}"
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise ConfigError(f"plugin {m!r}: cannot import")
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            try:
                spec.loader.exec_module(mod)
            except BaseException:
                sys.modules.pop(name, None)
                raise
        else:
            try:
                importlib.import_module(m)
            except ModuleNotFoundError as exc:
                raise ConfigError(f"plugin {m!r}: module not found ({exc}); give an importable "
                                  "module name or a .py file path") from None


class Registry(Generic[T]):
    """Name -> class for one kind of pluggable thing.

    Args:
        kind: what the names are, for messages (``"policy"``, ``"fairness policy"``, ...).
        builtin_modules: modules imported before any lookup (they register the built-ins).
    """

    def __init__(self, kind: str, builtin_modules: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.builtin_modules = builtin_modules
        self._classes: dict[str, T] = {}

    def register(self, cls: T) -> T:
        """Class decorator: add ``cls`` under ``cls.name``.

        Raises:
            ConfigError: empty name, or a different class already registered under the name.
        """
        name = getattr(cls, "name", "")
        if not name:
            raise ConfigError(f"{self.kind} class {cls.__qualname__} has no name")
        old = self._classes.get(name)
        if old is not None and class_origin(old) != class_origin(cls):
            taken = f"a built-in {self.kind}" if old.__module__.startswith("e3.") else f"{self.kind} {old.__qualname__}"
            raise ConfigError(f"{self.kind} name {name!r} is already taken by {taken} ({class_origin(old)[0]}); "
                              f"{cls.__qualname__} ({class_origin(cls)[0]}) must use another name")
        self._classes[name] = cls
        return cls

    def _load(self, plugins: Iterable[str]) -> None:
        for m in self.builtin_modules:
            importlib.import_module(m)
        load_plugins(plugins)

    def names(self, plugins: Iterable[str] = ()) -> list[str]:
        """Every registered name (built-ins, entry points, ``plugins``), sorted."""
        self._load(plugins)
        return sorted(self._classes)

    def get(self, name: str, plugins: Iterable[str] = ()) -> T:
        """The class registered as ``name``.

        Raises:
            ConfigError: unknown name (the message lists the registered ones).
        """
        self._load(plugins)
        if name not in self._classes:
            raise ConfigError(f"unknown {self.kind} {name!r}{did_you_mean(name, self._classes)}; "
                              f"registered: {sorted(self._classes)}")
        return self._classes[name]

    def __contains__(self, name: object) -> bool:
        self._load(())
        return name in self._classes
