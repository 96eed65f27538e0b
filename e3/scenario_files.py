"""Scenario files of one system: where they live, their names, whether a file belongs to it.

One home for the helpers every system used to copy (issue 32, item 6): E3's
``config/scenarios``, the fairness system's ``config/fairness``, the placement system's
``config/agents``. A scenario is given by name (``NAME`` -> ``FOLDER/NAME.yaml``) or as a path.
"""

from __future__ import annotations

from pathlib import Path

from e3.config import read_yaml


class ScenarioFolder:
    """The scenario files of one system.

    Args:
        folder: the folder holding ``NAME.yaml`` files.
        system: the value of the files' ``system`` field (``fairness``, ``placement``), or None for
            E3's files, which have none.
    """

    def __init__(self, folder: Path, system: str | None = None) -> None:
        self.folder = Path(folder)
        self.system = system

    def path(self, name_or_path: str | Path) -> Path:
        """``FOLDER/NAME.yaml`` for a bare name, else the given path (a ``.yaml``/``.yml`` file)."""
        p = Path(name_or_path)
        return p if p.suffix in (".yaml", ".yml") else self.folder / f"{name_or_path}.yaml"

    def names(self) -> list[str]:
        """Names of the scenario files in the folder, sorted."""
        return sorted(p.stem for p in self.folder.glob("*.yaml"))

    def holds(self, name_or_path: str | Path) -> bool:
        """True when the scenario's file exists and its ``system`` field names this system.

        Raises:
            ConfigError: the file exists but is not valid YAML.
        """
        p = self.path(name_or_path)
        if not p.is_file():
            return False
        d = read_yaml(p)
        return isinstance(d, dict) and d.get("system") == self.system
