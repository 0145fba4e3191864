"""Which function measures each kind of record, so any record can be measured again.

A runner takes a record's `config` and `settings` and returns its `result`; `slimllm rerun`
looks the kind up here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from slimllm.experiments import recipes
from slimllm.experiments.prune_cost import run_prune_cost
from slimllm.experiments.recipes import build, make
from slimllm.experiments.store import Record, Store
from slimllm.experiments.studies import run_nb_channels, run_nb_similarity
from slimllm.measure.eval_speed import _speed, bare_forward, first_windows, median_seconds
from slimllm.measure.latency import LatencySpec, measure_latency
from slimllm.measure.lm_eval_tasks import (
    SEVEN_TASKS,
)
from slimllm.measure.perplexity import get_protocol, perplexity, window_nll
from slimllm.measure.zeroshot import DEFAULT_BACKEND, DEFAULT_BATCH_SIZE, SOFTMAX_DTYPE, zeroshot
from slimllm.models.io import state_digest
from slimllm.models.loaders import parse_dtype
from slimllm.models.precision import resolve_dtype
from slimllm.util.provenance import cpu_info


def perplexity_config(
    recipe: dict[str, Any],
    dataset: str,
    protocol: str = "lineage-128",
    dtype: str = "float32",
    max_windows: int | None = None,
) -> dict[str, Any]:
    """The store configuration of one perplexity measurement (what decides the number)."""
    return {
        "model": recipe,
        "dataset": dataset,
        "protocol": get_protocol(protocol).name,
        "dtype": dtype,
        "max_windows": max_windows,
    }


def run_perplexity(config: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Measure a "perplexity" record's configuration: build the model, score the dataset."""

    device = settings.get("device", "cpu")
    model, tokenizer = build(config["model"], dtype=config["dtype"], device=device)
    return perplexity(
        model,
        tokenizer,
        config["dataset"],
        config["protocol"],
        config["max_windows"],
        settings.get("batch_size", 8),
        data_dir=settings.get("data_dir"),
        progress=settings.get("progress", True),
    ).to_dict()


def measure_perplexity(
    recipe: dict[str, Any],
    dataset: str,
    protocol: str = "lineage-128",
    dtype: str = "float32",
    max_windows: int | None = None,
    batch_size: int = 8,
    device: str = "cpu",
    store: Store | None = None,
    recompute: bool = False,
    model: PreTrainedModel | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
    progress: bool = True,
) -> Record:
    """The stored perplexity of `recipe` on `dataset`, measured now if the store lacks it.

    Pass the already-built `model` and `tokenizer` of the recipe to skip building it again;
    they must be the recipe's model in `dtype`.
    """
    store = store or Store()
    config = perplexity_config(recipe, dataset, protocol, dtype, max_windows)
    settings = {"batch_size": batch_size, "device": device, "progress": progress}
    if model is None:
        return store.run(
            "perplexity", config, lambda: run_perplexity(config, settings), settings, recompute
        )
    if tokenizer is None:
        raise ValueError("measure_perplexity: pass the tokenizer together with the model")
    return store.run(
        "perplexity",
        config,
        lambda: perplexity(
            model, tokenizer, dataset, protocol, max_windows, batch_size, progress=progress
        ).to_dict(),
        settings,
        recompute,
    )


def zeroshot_config(
    recipe: dict[str, Any], tasks: list[str], limit: int | None, seed: int, dtype: str
) -> dict[str, Any]:
    """The store configuration of one zero-shot measurement (what decides the numbers).

    The backend is not part of it: like the batch size, it changes the numbers by rounding
    only (`FastLM` is within 1e-4 of `HFLM` per item in float32, with identical accuracies;
    in bfloat16 the coarser rounding flips a few near-tied items, as HFLM's own batch size
    does), so a record keeps its key whichever produced it, and its result's settings name
    the backend (records from before the fast backend name none: they are HFLM's).
    """
    return {
        "model": recipe,
        "tasks": list(tasks),
        "limit": limit,
        "seed": seed,
        "dtype": dtype,
        "num_fewshot": 0,
        "softmax_dtype": SOFTMAX_DTYPE,
    }


def run_zeroshot(config: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """A "zeroshot" store record's result from its config.

    config: {"model": recipe, "tasks": [...], "limit": N or None, "seed": s, "dtype": name};
    settings: {"batch_size", "device", "data_dir", "backend"} (all optional).
    """

    model, tokenizer = build(
        config["model"],
        dtype=config["dtype"],
        device=settings.get("device", "cpu"),
        data_dir=settings.get("data_dir"),
    )
    result = zeroshot(
        model,
        tokenizer,
        tasks=config.get("tasks", list(SEVEN_TASKS)),
        limit=config.get("limit"),
        data_dir=settings.get("data_dir"),
        batch_size=settings.get("batch_size", DEFAULT_BATCH_SIZE),
        seed=config.get("seed", 0),
        softmax_dtype=config.get("softmax_dtype", SOFTMAX_DTYPE),
        backend=settings.get("backend", DEFAULT_BACKEND),
    )
    return result.to_dict()


def run_latency(config: dict[str, Any], settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Runner for a "latency" record.

    config: `{"models": {label: recipe}, "dtype": "auto"|..., **LatencySpec fields}`;
    settings: `{"device": "cpu", "threads": N, "progress": bool}` (all optional).
    """

    settings = settings or {}
    device = settings.get("device", "cpu")
    if settings.get("threads"):
        torch.set_num_threads(int(settings["threads"]))
    dtype, reason = resolve_dtype(config.get("dtype", "auto"), device)
    known = {f for f in LatencySpec.__dataclass_fields__}
    spec = LatencySpec(**{k: v for k, v in config.items() if k in known})
    models = {}
    for label, recipe in config["models"].items():
        model, _ = recipes.build(recipe, dtype=dtype, device=device)
        models[label] = model.to(parse_dtype(dtype))
    result = measure_latency(models, spec, progress=settings.get("progress", True))
    result.update(
        dtype=dtype,
        dtype_reason=reason,
        device=device,
        threads=torch.get_num_threads(),
        cpu=cpu_info(),
    )
    return result


def run_eval_speed(config: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Tokens per second of the bare forward and of `perplexity`'s scoring, per dtype, and the
    scoring's speed per batch size in `config["sweep_dtype"]`."""
    n, repeats, batch = config["windows"], config["repeats"], config["batch_size"]
    out: dict[str, Any] = {"cpu": cpu_info(), "threads": torch.get_num_threads(), "dtypes": {}}
    windows: torch.Tensor | None = None
    for dtype in config["dtypes"]:
        model, tokenizer = build(config["model"], dtype=dtype)
        if windows is None:
            windows = first_windows(tokenizer, config["dataset"], n)
        tokens = windows.numel()
        times = median_seconds(
            {
                "bare_forward": lambda m=model, w=windows: bare_forward(m, w, batch),
                "perplexity": lambda m=model, w=windows: window_nll(m, w, batch, progress=False),
            },
            repeats,
        )
        entry = {name: _speed(t, tokens) for name, t in times.items()}
        entry["perplexity_over_bare"] = (
            entry["perplexity"]["tokens_per_s"] / entry["bare_forward"]["tokens_per_s"]
        )
        if dtype == config["sweep_dtype"]:
            sweep = median_seconds(
                {
                    str(bs): lambda m=model, w=windows, b=bs: window_nll(m, w, b, progress=False)
                    for bs in config["batch_sizes"]
                },
                repeats,
            )
            entry["batch_sweep"] = {bs: _speed(t, tokens) for bs, t in sweep.items()}
        out["dtypes"][dtype] = entry
        del model
    out["tokens"] = int(windows.numel()) if windows is not None else 0
    return out


def tune_record_config(recipe: dict[str, Any]) -> dict[str, Any]:
    """The store configuration of a "tune" record: the tuned recipe is all that decides it."""
    if "tune" not in recipe:
        raise ValueError("a tune record needs a recipe with a 'tune' entry (recipes.tuned)")
    return {"model": recipe}


def run_tune(config: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Measure a "tune" record: tune the recipe's model again, cache it, return the report.

    The tuned model replaces the recipe cache's copy, so evaluations that build the recipe
    afterwards use exactly this run's weights. `settings`: device, data_dir, progress, and
    `rebuild` (default True; False reuses a cached tuned model and its recorded report).
    """

    recipe = tune_record_config(config["model"])["model"]
    model, _ = recipes.build(
        recipe,
        dtype="float32",
        device=settings.get("device", "cpu"),
        data_dir=settings.get("data_dir"),
        progress=settings.get("progress", True),
        rebuild=settings.get("rebuild", True),
    )
    folder = recipes.cached_folder(recipe)
    record = json.loads((folder / "config.json").read_text())["slimllm"]["record"]
    return {
        "tune": record["tune"],
        "parameters": sum(p.numel() for p in model.parameters()),
        "cache_key": folder.name,
    }


def run_prune(config: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Measure a "prune" record's configuration again (no recipe cache), with the digest of
    the pruned weights (`state_digest`) so that two runs can be compared bit for bit."""
    model, _, report = make(config["model"], settings.get("device", "cpu"))
    return {**report, "weights_sha256": state_digest(model)}


Runner = Callable[[dict[str, Any], dict[str, Any]], Any]


RUNNERS: dict[str, Runner] = {
    "perplexity": run_perplexity,
    "prune": run_prune,
    "eval_speed": run_eval_speed,
    "zeroshot": run_zeroshot,
    "prune_cost": run_prune_cost,
    "latency": run_latency,
    "tune": run_tune,
    "nb_channels": run_nb_channels,
    "nb_similarity": run_nb_similarity,
}


def runner_for(kind: str) -> Runner:
    if kind not in RUNNERS:
        raise ValueError(
            f"records of kind {kind!r} cannot be re-run; re-runnable kinds: {sorted(RUNNERS)}"
        )
    return RUNNERS[kind]
