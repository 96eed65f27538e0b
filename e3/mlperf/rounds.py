"""Where each MLPerf Inference round's results live (repository, pinned commit, summary format).

Source: ``shared/mlperf/SOURCES.md`` (origins gathered 2026-11-22). Commits are pinned so a
re-fetch reads the same bytes; the frozen priors record the commit of every value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RAW_URL = "https://raw.githubusercontent.com/{repo}/{ref}/{path}"


@dataclass(frozen=True)
class ExplicitResult:
    """A result location listed by hand, for a round whose summary file was not obtainable."""

    division: str
    submitter: str
    platform: str
    benchmark: str
    scenario: str
    used_model: str  # the benchmark's folder name in the results tree


@dataclass(frozen=True)
class Round:
    """One MLPerf Inference round.

    Attributes:
        name: round label as used in e3 records, e.g. ``"v5.1"``.
        repo: upstream GitHub repository ``owner/name``.
        ref: pinned commit of the files read.
        summary_file: the round summary's file name, or None when none was published/obtainable.
        summary_format: ``"list"`` (v4.1-v6.0 ``summary_results.json``) or ``"keyed"``
            (v6.1 ``summary.json``, an object keyed "0".."N" with renamed fields).
        mirror_summary_fallback: a file name a local mirror may hold instead of the summary
            (an excerpt); records built from it are flagged ``summary_is_excerpt``.
        explicit_results: result locations to read when there is no summary file.
    """

    name: str
    repo: str
    ref: str
    summary_file: str | None
    summary_format: str = "list"
    mirror_summary_fallback: str | None = None
    explicit_results: tuple[ExplicitResult, ...] = field(default_factory=tuple)

    @property
    def folder(self) -> str:
        """Folder name of the round under the MLPerf data root (``inference_results_v5.1``)."""
        return f"inference_results_{self.name}"

    def raw_url(self, path: str) -> str:
        """Download URL of ``path`` (relative to the repository root) at the pinned commit."""
        return RAW_URL.format(repo=self.repo, ref=self.ref, path=path)


ROUNDS: dict[str, Round] = {
    r.name: r
    for r in [
        Round(
            name="v4.0",
            repo="mlcommons/inference_results_v4.0",
            ref="3c4a1cf196b70175cfe7c59e067cd1d923aa4f3f",
            summary_file=None,
            explicit_results=(
                ExplicitResult("closed", "NVIDIA", "Orin_TRT", "stable-diffusion-xl",
                               "SingleStream", "stable-diffusion-xl"),
                ExplicitResult("closed", "NVIDIA", "Orin_TRT", "stable-diffusion-xl",
                               "Offline", "stable-diffusion-xl"),
            ),
        ),
        Round(
            name="v4.1",
            repo="mlcommons/inference_results_v4.1",
            # summary_results.json exists only at this commit (refs/pull/2/head), not on main.
            ref="4a0c87411066bd697db46fa44cf6f04fd458f627",
            summary_file="summary_results.json",
        ),
        Round(
            name="v5.1",
            repo="mlcommons/inference_results_v5.1",
            ref="965182b03376a00fcae415c54e560e1c83937932",
            summary_file="summary_results.json",
        ),
        Round(
            name="v6.0",
            repo="mlcommons/inference_results_v6.0",
            ref="ab33b2144a9f822f69d24f78569f993d195ee7e5",
            summary_file="summary_results.json",
        ),
        Round(
            name="v6.1",
            repo="mlcommons/inference_results_v6.1",
            ref="10ecdffda3bb94d71f0203a6ca8e20c17943f27c",
            summary_file="summary.json",
            summary_format="keyed",
            mirror_summary_fallback="summary.json.EXCERPT_edge_llama3.1-8b-edge.json",
        ),
    ]
}

#: MLPerf benchmark names e3 understands, mapped to the e3 task kind they give priors for.
BENCHMARKS: dict[str, str] = {"llama3.1-8b-edge": "llm", "stable-diffusion-xl": "sdxl"}


def get_round(name: str) -> Round:
    """Return the :class:`Round` called ``name``. Raises KeyError listing the known rounds."""
    try:
        return ROUNDS[name]
    except KeyError:
        raise KeyError(f"unknown MLPerf round {name!r}; known: {sorted(ROUNDS)}") from None
