"""What pruning costs: wall time and peak resident memory of one method on one model.

`run_prune_cost(config, settings)` is the runner of "prune_cost" records: it loads the
recipe's base model, makes every weight resident (safetensors are memory-mapped), then times
the pruning alone; the one-off tokenisation of the calibration corpus is timed apart, as
`calibration_tokenize_seconds`. Peak memory is the process's ru_maxrss, so a fair number
needs a fresh process per measurement (benchmarks/prune_cost_methods.py starts one each).
"""

from __future__ import annotations

import resource
import time
from typing import Any

import torch

from slimllm.data.calibration import calibration_corpus_ids
from slimllm.experiments.recipes import prune_config
from slimllm.models.loaders import load_model
from slimllm.peers.registry import prune_with


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prune_cost_config(recipe: dict[str, Any]) -> dict[str, Any]:
    """The store configuration of one cost measurement: the pruned recipe and the device."""
    return {"model": recipe, "device": "cpu"}


def run_prune_cost(config: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Load, make resident, prune the recipe's model; time and memory of the pruning step."""

    recipe = config["model"]
    prune = prune_config(recipe)
    threads = settings.get("threads")
    if threads:
        torch.set_num_threads(int(threads))
    rss_start = peak_rss_mib()
    model, tokenizer = load_model(
        recipe["base"], dtype=recipe.get("prune_dtype", "float32"), device=config["device"]
    )
    with torch.no_grad():
        for p in model.parameters():
            p.sum()
    loaded = peak_rss_mib()
    # Tokenising the calibration corpus is a one-off per process (cached), like loading the
    # model; it is timed on its own so that `seconds` is the pruning alone.
    start = time.perf_counter()
    calibration_corpus_ids(tokenizer, settings.get("data_dir"), prune.calib_dataset)
    tokenize_seconds = time.perf_counter() - start
    start = time.perf_counter()
    report = prune_with(
        recipe["prune"]["method"],
        model,
        tokenizer,
        prune,
        device=config["device"],
        data_dir=settings.get("data_dir"),
        progress=False,
    )
    seconds = time.perf_counter() - start
    peak = peak_rss_mib()
    return {
        "method": report.method,
        "seconds": seconds,
        "calibration_tokenize_seconds": tokenize_seconds,
        "target": report.target,
        "achieved": report.achieved,
        "params_before": report.params_before,
        "params_after": report.params_after,
        "rss_before_load_mib": rss_start,
        "rss_after_load_mib": loaded,
        "peak_rss_mib": peak,
        "peak_over_loaded_mib": peak - loaded,
        "threads": torch.get_num_threads(),
        "calibration": report.calibration,
    }
