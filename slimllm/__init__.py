"""SlimLLM companion: structured pruning of LLMs (Guo et al., ICML 2025), reproducible offline.

The package is cut by concern into sub-packages that form layers. A module may import from its
own sub-package and from the layers listed before it, never from a later one (a test walks
every import against `LAYERS`):

- `util`: provenance (versions, CPU, model fingerprint) and atomic JSON files.
- `data`: where data lives, perplexity texts, calibration windows, task rows, alpaca records.
- `models`: loaders, architecture adapters, surgery, the pruned model classes, save and load.
- `measure`: perplexity, zero-shot, latency, FLOPs: a model in, numbers out.
- `method`: SlimLLM itself, one module per part of the paper, and the harness it shares.
- `peers`: the baselines, each a score and an allocation over that harness; methods by name.
- `analysis`: statistics of a dense model that the stage notebooks plot.
- `tuning`: LoRA recovery: a model in, a tuned model out.
- `deploy`: export to other runtimes (GGUF for llama.cpp).
- `experiments`: recipes, the results store, runners and tables: the only layer that rebuilds
  models from recipes and writes records.
- `book`: notebook presets, plotting and the book's build tools.
- `cli`: the `slimllm` command line.
"""

__version__ = "0.1.0"

LAYERS = (
    "util",
    "data",
    "models",
    "measure",
    "method",
    "peers",
    "analysis",
    "tuning",
    "deploy",
    "experiments",
    "book",
    "cli",
)
