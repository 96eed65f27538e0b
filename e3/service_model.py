"""The service-time model of the paper (section 2.1), in one place.

Eq. 1 (LLM): ``service_ms = alpha * L_in + beta * L_out`` (alpha, beta in ms per token);
Eq. 2 (SDXL): ``service_ms = c`` (ms). The hidden truth, the Online Performance Model, the MLPerf
priors and the baselines all evaluate the model through :func:`service_ms`, each with its own
parameters and its own multiplicative factor (the truth's hidden slowdowns, the OPM's calibration)
applied to the result, so every caller computes the same floating-point expression.
"""

from __future__ import annotations

LLM = "llm"


def service_ms(kind: str, alpha: float, beta: float, c: float, input_tokens, output_tokens):
    """Eq. 1 for ``kind == "llm"``, else Eq. 2.

    Args:
        kind: the device's task kind, ``"llm"`` or ``"sdxl"``.
        alpha: ms per input token (Eq. 1; unused for SDXL).
        beta: ms per output token (Eq. 1; unused for SDXL).
        c: ms per image (Eq. 2; unused for LLM).
        input_tokens: L_in, a number or a numpy array of shape (n,) (unused for SDXL).
        output_tokens: L_out, same shape as ``input_tokens`` (unused for SDXL).

    Returns:
        Service time in ms: a float, or an array of shape (n,) for LLM array inputs.

    Source: the E3-Agent paper's Eq. 1 and Eq. 2 (arXiv 2605.27428, section 2.2).
    """
    if kind == LLM:
        return alpha * input_tokens + beta * output_tokens
    return c
