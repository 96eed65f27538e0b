"""Build ``paper/build/main.pdf`` when a working TeX installation is present, else say why not.

A TeX Live base install puts ``latexmk`` on PATH without the packages ``paper/main.tex`` uses
(on Debian ``booktabs.sty`` is in texlive-latex-recommended), so "latexmk exists" is not "the PDF
can be built".
The status file states which of three things happened: built, or skipped with the reason.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from e3.errors import E3Error
from e3.io import write_text_atomic

_USES = re.compile(r"\\(documentclass|usepackage)\s*(?:\[[^\]]*\])?\s*\{([^}]*)\}")
_NOT_FOUND = re.compile(r"File `([^']+)' not found")
_PAGES = re.compile(r"Output written on .*?\((\d+) pages?")
# paper/main.tex's \val{Name} warns so when a cited value has not been generated (a study not run)
_PENDING = re.compile(r"e3 value (\S+) not generated")


def build_summary(tex_log: str | Path) -> str:
    """`` (N pages; M values pending: A, B, ...)`` from the TeX engine's log of the last pass, or ''
    when that log does not exist. Pending values are the ``\\val`` names main.tex cites that the
    generated inputs do not define (e.g. the operating-point study has not run)."""
    p = Path(tex_log)
    if not p.is_file():
        return ""
    text = p.read_text(errors="replace").replace("\n", "")  # TeX wraps log lines at 79 characters
    pages = _PAGES.findall(text)
    pending = sorted(set(_PENDING.findall(text)))
    parts = [f"{pages[-1]} pages"] if pages else []
    if pending:
        shown = ", ".join(pending[:8]) + (", ..." if len(pending) > 8 else "")
        parts.append(f"{len(pending)} values pending: {shown}")
    return f" ({'; '.join(parts)})" if parts else ""


def tex_requirements(tex: str | Path) -> list[str]:
    """The class and package files ``tex`` loads (``article.cls``, ``booktabs.sty``, ...)."""
    text = re.sub(r"(?<!\\)%.*", "", Path(tex).read_text(encoding="utf-8"))  # drop comments
    out = []
    for kind, names in _USES.findall(text):
        ext = ".cls" if kind == "documentclass" else ".sty"
        out += [n.strip() + ext for n in names.split(",") if n.strip()]
    return out


def missing_tex_files(files: list[str], kpsewhich: str) -> list[str]:
    """The ``files`` that ``kpsewhich`` cannot find in the TeX installation."""
    return [f for f in files
            if not subprocess.run([kpsewhich, f], capture_output=True, text=True).stdout.strip()]


def build_pdf(tex: str | Path, status: str | Path, log: str | Path, engine: str = "latexmk") -> str:
    """Build ``tex`` into ``{tex folder}/build`` with ``engine``, or skip with the reason.

    Writes one line to ``status`` (and the log): ``built ... (N pages; M values pending: ...)``
    (:func:`build_summary`) or ``skipped: ...`` (no engine on PATH, or TeX files missing, found with
    ``kpsewhich`` before the build or in the engine's log).

    Returns:
        The status line.

    Raises:
        E3Error: the engine failed for another reason (the log names it).
    """
    tex, log = Path(tex), Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    exe = shutil.which(engine)
    missing: list[str] = []
    if exe is None:
        line = f"skipped: no {engine} on PATH (install TeX Live to build the PDF)"
    else:
        kpse = shutil.which("kpsewhich")
        missing = missing_tex_files(tex_requirements(tex), kpse) if kpse else []
        if not missing:
            with open(log, "w") as fh:
                r = subprocess.run([exe, "-pdf", "-interaction=nonstopmode", "-outdir=build", tex.name],
                                   cwd=tex.parent, stdout=fh, stderr=subprocess.STDOUT)
            if r.returncode != 0:
                missing = sorted(set(_NOT_FOUND.findall(log.read_text(errors="replace"))))
                if not missing:
                    raise E3Error(f"{engine} failed on {tex} (exit {r.returncode}); see {log}")
        line = (f"skipped: TeX files missing: {', '.join(missing)} (install them, e.g. "
                f"texlive-latex-recommended on Debian, or `tlmgr install` each package) to build the PDF"
                if missing else f"built {tex.parent / 'build' / tex.with_suffix('.pdf').name}"
                + build_summary(tex.parent / "build" / tex.with_suffix(".log").name))
    with open(log, "a") as fh:
        fh.write(line + "\n")
    write_text_atomic(status, line + "\n")
    return line
