"""e3: a reproducible pipeline and benchmark suite for resource management of edge
generative inference, reproducing and extending the E3-Agent paper (arXiv 2605.27428)."""

__version__ = "0.5.0"
