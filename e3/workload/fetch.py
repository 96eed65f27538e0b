"""Obtain the public request traces: copy them from a local mirror, or download them at a pinned commit.

The trace files are not ours to commit (CC-BY 4.0, redistribution with attribution, but they
stay outside the repository). Layout of the destination and of a mirror:
``{dest}/azure-llm-inference-2023/{AzureLLMInferenceTrace_conv.csv, AzureLLMInferenceTrace_code.csv,
AzureLLMInferenceDataset2023.md, LICENSE}``. Every file is checked against the sha256 pinned here
(the files at commit ``b469a113`` of github.com/Azure/AzurePublicDataset) and written atomically;
``{dest}/FETCH_MANIFEST.json`` records where each came from.
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from e3.errors import E3Error
from e3.io import atomic_path, sha256_file, write_json_atomic

OFFLINE_HINT = ("No network? Copy the traces from a local mirror instead: "
                "`snakemake fetch_traces --cores 1 --config traces_mirror=PATH` (or set "
                "`traces: {mirror: PATH}` in config/config.yaml, or E3_TRACES_MIRROR=PATH; "
                "`e3 fetch-traces --mirror PATH` outside Snakemake); PATH holds "
                "azure-llm-inference-2023/, e.g. ../shared/traces.")


class FetchError(E3Error):
    """A trace file could not be copied or downloaded, or its sha256 differs from the pinned one."""


@dataclass(frozen=True)
class TraceSource:
    """A public trace data set pinned to one commit of its repository.

    Attributes:
        folder: subfolder of the destination (and of a mirror).
        repo: GitHub ``owner/name``.
        commit: the pinned commit (40 hex digits).
        files: local file name -> (path in the repository, sha256 of its bytes).
        licence: the licence, in words.
        citation: the paper to cite.
    """

    folder: str
    repo: str
    commit: str
    files: dict[str, tuple[str, str]]
    licence: str
    citation: str

    def url(self, repo_path: str) -> str:
        """Raw download URL of ``repo_path`` at the pinned commit."""
        return f"https://raw.githubusercontent.com/{self.repo}/{self.commit}/{repo_path}"


AZURE_LLM_2023 = TraceSource(
    folder="azure-llm-inference-2023",
    repo="Azure/AzurePublicDataset",
    commit="b469a113cedca53ddc3bdea71a143dc4b7d8700c",
    files={
        "AzureLLMInferenceTrace_conv.csv": ("data/AzureLLMInferenceTrace_conv.csv",
                                            "2f1e5b666d4e3055fdbba98598ce2ec307767b9064e03e2fa46676dbcc7d0bf8"),
        "AzureLLMInferenceTrace_code.csv": ("data/AzureLLMInferenceTrace_code.csv",
                                            "54e9a6d2a4bd06ba1e060304b900abbc74cbea53de96506e60fe5bb4f2277fb6"),
        "AzureLLMInferenceDataset2023.md": ("AzureLLMInferenceDataset2023.md",
                                            "9996a0d9e4d94ee52bc3564a33f51e172a34f4a58960a05f066a2b8061f9a1e0"),
        "LICENSE": ("LICENSE", "9bbc1ea9fe5c96df01b311a2ac864d5b18fc87b9948bfd14770e4b44db755ee9"),
    },
    licence="Creative Commons Attribution 4.0 International (CC-BY 4.0)",
    citation=("Pratyush Patel, Esha Choukse, Chaojie Zhang, Aashaka Shah, Inigo Goiri, Saeed Maleki, "
              "Ricardo Bianchini. Splitwise: Efficient generative LLM inference using phase splitting. "
              "ISCA 2024."),
)

SOURCES = {AZURE_LLM_2023.folder: AZURE_LLM_2023}


def pinned_sha256(path: str | Path) -> str | None:
    """The sha256 pinned for a fetched trace file, by its folder and name
    (``.../azure-llm-inference-2023/AzureLLMInferenceTrace_conv.csv``), or None for a file that
    is not one of :data:`SOURCES` (a user's own trace, which has no pin)."""
    p = Path(path)
    src = SOURCES.get(p.parent.name)
    if src is None or p.name not in src.files:
        return None
    return src.files[p.name][1]


def fetch_traces(dest: str | Path, mirror: str | Path | None = None, timeout_s: float = 60.0,
                 sources: tuple[TraceSource, ...] = (AZURE_LLM_2023,), progress=print) -> list[dict]:
    """Copy (from ``mirror``) or download (at the pinned commit) every file of ``sources`` into ``dest``.

    Args:
        dest: destination folder (``resources/traces`` in the workflow).
        mirror: local folder with the same layout; None downloads.
        timeout_s: per-download timeout in seconds.
        sources: the data sets to fetch.
        progress: callable for progress lines.

    Returns:
        The manifest entries (also written to ``dest/FETCH_MANIFEST.json``).

    Raises:
        FetchError: a file is missing from the mirror, cannot be downloaded (the message says how
            to use a mirror when offline), or its sha256 is not the pinned one.
    """
    dest = Path(dest)
    mirror = Path(mirror) if mirror else None
    if mirror is not None and not mirror.is_dir():
        raise FetchError(f"traces mirror {mirror} is not a folder. {OFFLINE_HINT}")
    manifest = []
    for src in sources:
        for name, (repo_path, sha) in src.files.items():
            out = dest / src.folder / name
            with atomic_path(out) as tmp:
                if mirror is not None:
                    origin = mirror / src.folder / name
                    if not origin.is_file():
                        raise FetchError(f"traces mirror {mirror} lacks {src.folder}/{name}. {OFFLINE_HINT}")
                    shutil.copyfile(origin, tmp)
                    origin = str(origin)
                else:
                    origin = src.url(repo_path)
                    try:
                        with urllib.request.urlopen(origin, timeout=timeout_s) as resp:  # noqa: S310 (pinned https URL)
                            tmp.write_bytes(resp.read())
                    except (urllib.error.URLError, TimeoutError, OSError) as exc:
                        raise FetchError(f"download of {origin} failed: {exc}. {OFFLINE_HINT}") from exc
                got = sha256_file(tmp)
                if got != sha:
                    raise FetchError(f"{origin}: sha256 {got} differs from the pinned {sha} "
                                     f"({src.repo}@{src.commit[:8]}:{repo_path}); the file was not written")
            manifest.append({"data_set": src.folder, "file": name, "origin": origin, "repository": src.repo,
                             "commit": src.commit, "path": repo_path, "sha256": sha,
                             "licence": src.licence, "citation": src.citation})
            progress(f"{src.folder}/{name} <- {origin}")
    write_json_atomic(dest / "FETCH_MANIFEST.json", manifest)
    return manifest

