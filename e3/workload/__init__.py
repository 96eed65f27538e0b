"""Request traces from production LLM services: format readers and the fetch of the public files.

The readers (:mod:`e3.workload.readers`) turn the Azure LLM inference trace 2023, BurstGPT and
Mooncake files into arrival times (ms) and input/output token counts; the simulator's workload
(:mod:`e3.sim.workload`) replays them. :mod:`e3.workload.fetch` obtains the Azure files from their
public repository at a pinned commit, or from a local mirror. Nothing here imports ``e3.sim``.
"""
