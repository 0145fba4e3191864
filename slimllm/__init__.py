"""SlimLLM companion: structured pruning of LLMs (Guo et al., ICML 2025), reproducible offline."""

__version__ = "0.1.0"
