"""What a notebook will need on one GPU, estimated from its parameters and the model's config.

No weights are read: the model is built on the meta device (`slimllm.models.reference_configs`
gives LLaMA-7B's config on a machine that never downloaded it), which yields the parameter count
and proves the pruner can walk the architecture. The estimate counts computing every record
from scratch; a notebook that finds its records in the store needs far less.

Memory: the weights (parameters x bytes of the dtype) plus the largest working set, the larger of
- pruning: a layer's calibration inputs and outputs (2 x tokens x hidden x bytes), its float64
  hidden x hidden statistics (a covariance and its eigenvectors, Eq. 8) and one forward's
  intermediate activations (tokens x intermediate x bytes x 3: gate, up and their product);
- evaluation: a batch's float32 logits (batch x window x vocabulary x 4 bytes).

Time: floating-point operations / (the GPU's dense peak x an assumed utilisation), with
- a forward pass per token: 2 N + 2 n_layer n_ctx d_model (Kaplan et al. 2020, "Scaling Laws for
  Neural Language Models", Table 1; N: parameters outside the embedding);
- a pruning run: `PRUNE_PASSES` forwards over the calibration tokens (the dense pass that sets
  the layer ratios, each layer's statistics, its pruned output) and a symmetric
  eigendecomposition of hidden x hidden per layer, ~9 n^3 operations (Golub & Van Loan,
  "Matrix Computations", 4th ed., 8.3: symmetric QR with eigenvectors); the head search's
  arithmetic is not counted;
- a perplexity evaluation: one forward over the evaluated tokens, `eval_windows` x the window,
  or for a full test set its UTF-8 bytes / `BYTES_PER_TOKEN`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from transformers import AutoModelForCausalLM, PretrainedConfig

from slimllm.data.texts import load_text_rows
from slimllm.measure.perplexity import PROTOCOLS
from slimllm.models.adapters import get_adapter
from slimllm.models.loaders import parse_dtype
from slimllm.models.reference_configs import config_of

#: The GPU the estimate is for: an A100 80GB, whose dense FP16/BF16 tensor-core peak is
#: 312 TFLOP/s and FP32 19.5 TFLOP/s (NVIDIA A100 datasheet). Not the paper's V100 (its latency
#: table): the notebooks evaluate in bfloat16, which a V100 lacks.
GPU = {"name": "NVIDIA A100 80GB", "memory_gib": 80.0, "source": "NVIDIA A100 datasheet"}
PEAK_FLOPS = {torch.float16: 312e12, torch.bfloat16: 312e12, torch.float32: 19.5e12}

#: Fraction of the peak a forward achieves: an assumption, not a measurement (no GPU here).
UTILISATION = 0.4

#: Forwards over the calibration tokens per pruning run (the module docstring lists them).
PRUNE_PASSES = 3

#: Tokens of a full test set: its UTF-8 bytes over this (the rule of thumb of ~4 characters
#: per token for English text under BPE and SentencePiece vocabularies).
BYTES_PER_TOKEN = 4

#: The window protocol and batch the notebooks evaluate under (`measure_perplexity`'s defaults).
PROTOCOL = "lineage-128"
EVAL_BATCH = 8


@dataclass(frozen=True)
class Work:
    """What a notebook computes on the model: pruning runs (each on `calib_samples`), extra
    forwards over the calibration tokens for statistics, and perplexity evaluations."""

    prunes: int = 0
    live_prunes: int = 0
    statistics_passes: int = 0
    #: (dataset, windows or None for the full set) per evaluation.
    evaluations: tuple[tuple[str, int | None], ...] = ()


def _evaluations(p: dict[str, Any], variants: int) -> tuple[tuple[str, int | None], ...]:
    return tuple((ds, p["eval_windows"]) for _ in range(variants) for ds in p["datasets"])


#: Each notebook's work, counted from its cells (stem -> parameters -> Work). The results pages
#: only read records.
WORK: dict[str, Callable[[dict[str, Any]], Work]] = {
    # The dense model on the three test sets its cells name.
    "01_setup_and_dense_baseline": lambda p: Work(
        evaluations=tuple((ds, p["eval_windows"]) for ds in ("wikitext2", "ptb", "ptb-valid"))
    ),
    "02_framework_overview": lambda p: Work(),
    "03_pca_preliminaries": lambda p: Work(statistics_passes=1),
    "04_head_importance": lambda p: Work(statistics_passes=1),
    # The channel study, then dense + (Eq. 8, no feature space) per ratio on each dataset.
    "05_channel_importance": lambda p: Work(
        prunes=2 * len(p["ratios"]),
        statistics_passes=1,
        evaluations=_evaluations(p, 1 + 2 * len(p["ratios"])),
    ),
    # Dense + (with, without regression) per ratio.
    "06_regression": lambda p: Work(
        prunes=2 * len(p["ratios"]), evaluations=_evaluations(p, 1 + 2 * len(p["ratios"]))
    ),
    "07_layer_ratios": lambda p: Work(statistics_passes=1),
    # Dense, SlimLLM per ratio and four ablations; then three live runs on a few windows.
    "08_slimllm_on_smollm2": lambda p: Work(
        prunes=len(p["ratios"]) + 4,
        live_prunes=3,
        evaluations=(
            *_evaluations(p, 1 + len(p["ratios"]) + 4),
            ("wikitext2", p["live_eval_windows"]),
        ),
    ),
}

#: Parameters that name a decoder layer, and those that count layers.
LAYER_INDICES = ("example_layer", "spectrum_layers")
LAYER_COUNTS = ("layer_counts",)


def meta_model(config: PretrainedConfig) -> torch.nn.Module:
    """The model of `config` on the meta device: shapes only, no memory, no weights read."""
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def check_layers(values: dict[str, Any], layers: int, notebook: str) -> None:
    """Layer indices and counts in `values` must fit a model of `layers` decoder layers."""
    for name in LAYER_INDICES:
        given = values.get(name)
        for index in [given] if isinstance(given, int) else given or []:
            if not 0 <= index < layers:
                raise ValueError(f"{notebook}: {name}={given} but the model has {layers} layers")
    for name in LAYER_COUNTS:
        if any(not 1 <= n <= layers for n in values.get(name) or []):
            raise ValueError(f"{notebook}: {name}={values[name]} but the model has {layers} layers")


@functools.cache
def full_set_tokens(dataset: str, data_dir: str | None) -> int:
    """A full test set's token count, estimated from its size (`BYTES_PER_TOKEN`)."""
    rows, _ = load_text_rows(dataset, data_dir)
    return math.ceil(len("\n\n".join(rows).encode()) / BYTES_PER_TOKEN)


def _gib(n_bytes: float) -> float:
    return round(n_bytes / 2**30, 2)


#: One cell of the Results tables (`benchmarks/table1.py`, `ablations.py`): a pruning run, then
#: the full WikiText-2 and PTB test sets (the zero-shot tasks are not counted).
TABLE_CELL = Work(prunes=1, evaluations=(("wikitext2", None), ("ptb", None)))


def estimate(notebook: str, values: dict[str, Any]) -> dict[str, Any] | None:
    """What `notebook` run with `values` needs on `GPU`; None for a notebook that builds no
    model (it only reads records)."""
    if notebook not in WORK or "model" not in values:
        return None
    return estimate_work(WORK[notebook](values), values, notebook)


def estimate_work(work: Work, values: dict[str, Any], name: str = "") -> dict[str, Any]:
    """What `work` on the model of `values` (a notebook's parameters, `name` for its errors)
    needs on `GPU`."""
    config, source = config_of(values["model"])
    model = meta_model(config)
    get_adapter(model)  # an architecture the pruner cannot walk fails here, not on the GPU
    layers = config.num_hidden_layers
    check_layers(values, layers, name)
    dtype = parse_dtype(values["dtype"])
    size = torch.finfo(dtype).bits // 8
    params = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    d, inner, vocab = config.hidden_size, config.intermediate_size, config.vocab_size
    window = PROTOCOLS[PROTOCOL].seq_len
    calib = values["calib_samples"] * values["calib_seq_len"]
    live = values.get("live_calib_samples", 0) * values["calib_seq_len"]

    def forward(tokens: int, context: int) -> float:
        return tokens * (2 * (params - embedding) + 2 * layers * context * d)

    eval_tokens = [
        windows * window if windows is not None else full_set_tokens(ds, values["data_dir"])
        for ds, windows in work.evaluations
    ]
    prune_flops = (work.prunes * calib + work.live_prunes * live) * PRUNE_PASSES
    flops = (
        forward(prune_flops + work.statistics_passes * calib, values["calib_seq_len"])
        + (work.prunes + work.live_prunes) * layers * 9 * d**3
        + sum(forward(t, window) for t in eval_tokens)
    )
    working = 0
    if work.prunes or work.live_prunes or work.statistics_passes:
        working = 2 * calib * d * size + 2 * d * d * 8 + calib * inner * size * 3
    if work.evaluations:
        working = max(working, EVAL_BATCH * window * vocab * 4)
    seconds = flops / (PEAK_FLOPS[dtype] * UTILISATION)
    return {
        "model": values["model"],
        "config": source,
        "layers": layers,
        "parameters": params,
        "dtype": str(dtype).removeprefix("torch."),
        "weights_gib": _gib(params * size),
        "peak_gib": _gib(params * size + working),
        "fits": params * size + working <= GPU["memory_gib"] * 2**30,
        "work": {
            "prunes": work.prunes + work.live_prunes,
            "statistics_passes": work.statistics_passes,
            "evaluations": len(work.evaluations),
            "evaluated_tokens": sum(eval_tokens),
        },
        "tflop": round(flops / 1e12, 1),
        "minutes": round(seconds / 60, 1),
    }


def assumptions() -> dict[str, Any]:
    """The stated constants the estimates rest on."""
    return {
        "gpu": GPU,
        "peak_tflops": {str(k).removeprefix("torch."): v / 1e12 for k, v in PEAK_FLOPS.items()},
        "utilisation": UTILISATION,
        "prune_passes": PRUNE_PASSES,
        "bytes_per_token": BYTES_PER_TOKEN,
        "method": "slimllm.book.budget (its docstring says where each number comes from)",
    }
