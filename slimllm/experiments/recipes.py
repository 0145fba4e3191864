"""Model recipes: a JSON description of a model that any record can rebuild it from.

A recipe is `{"base": NAME}` for a dense model, plus `"prune": {"method": ..., **options}` and
`"prune_dtype"` for a pruned one (and `"tune": {...}` once recovery fine-tuning has run). A
pruned model is deterministic given its recipe, so records key on the recipe rather than on a
folder, and `build` keeps each built model in a disk cache so the same recipe is pruned once.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from slimllm.experiments.store import Store, config_key
from slimllm.method.config import PruneConfig
from slimllm.models.io import load_pruned, save_pruned, weights_digest
from slimllm.models.loaders import DEFAULT_MODEL, cache_dir, load_model, parse_dtype
from slimllm.peers.registry import prune_with
from slimllm.tuning.lora import TuneConfig, tune

RECIPE_KEYS = ("base", "prune", "prune_dtype", "tune", "weights_sha256")


#: PruneConfig fields added after recipes were first recorded: left out of a recipe while at
#: these defaults, so the recipes (and the records keyed on them) made before stay the same.
LATER_DEFAULTS: dict[str, Any] = {
    "round_channels_to": 1,
    "calib_dataset": "bookcorpus",
    "calib_dtype": None,
}


def is_pruned_folder(path: str | os.PathLike[str]) -> bool:
    config = Path(path) / "config.json"
    return config.is_file() and "slimllm" in json.loads(config.read_text())


def load_any(
    name: str, dtype: str = "float32", device: str = "cpu"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A folder saved by `save_pruned` through `load_pruned`, anything else through `load_model`."""
    if is_pruned_folder(name):
        return load_pruned(name, dtype=parse_dtype(dtype), device=device)
    return load_model(name, dtype=dtype, device=device)


def of_folder(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The identity of a model folder, as records key it.

    The recipe its config records (written by `slimllm prune`, `tune` and `build`) while the
    weights are still the ones saved with it; otherwise (weights changed since, a folder saved
    before digests were kept, or a plain checkpoint) `{"base": <absolute path>,
    "weights_sha256": <digest>}`, so two different models never share a record.
    """
    folder = Path(path)
    digest = weights_digest(folder)
    if is_pruned_folder(folder):
        entry = json.loads((folder / "config.json").read_text())["slimllm"]
        recipe = entry.get("record", {}).get("recipe")
        if recipe is not None and entry.get("weights_sha256") == digest:
            return recipe
    return {"base": str(folder.resolve()), "weights_sha256": digest}


def dense(base: str = DEFAULT_MODEL) -> dict[str, Any]:
    return {"base": base}


def pruned(
    config: PruneConfig,
    base: str = DEFAULT_MODEL,
    method: str = "slimllm",
    prune_dtype: str = "float32",
) -> dict[str, Any]:
    """The recipe of `base` pruned with `config` (every field spelled out, defaults included,
    except the fields of LATER_DEFAULTS at their defaults).

    For a method other than SlimLLM pass `slimllm.peers.registry.method_config(method, ...)`.
    """
    options = {
        k: v for k, v in asdict(config).items() if k not in LATER_DEFAULTS or v != LATER_DEFAULTS[k]
    }
    return {"base": base, "prune": {"method": method, **options}, "prune_dtype": prune_dtype}


def tuned(recipe: dict[str, Any], config: TuneConfig) -> dict[str, Any]:
    """`recipe` followed by LoRA recovery with `config` (every field spelled out)."""
    if "tune" in recipe:
        raise ValueError("the recipe is already tuned; recipes hold one tuning run")
    return {**recipe, "tune": asdict(config)}


def untuned(recipe: dict[str, Any]) -> dict[str, Any]:
    """The recipe of the model before its recovery tuning."""
    return {k: v for k, v in recipe.items() if k != "tune"}


def tune_config(recipe: dict[str, Any]) -> TuneConfig:
    """The TuneConfig of a tuned recipe (unknown options are an error, not ignored)."""

    return TuneConfig.from_dict(recipe["tune"])


def prune_config(recipe: dict[str, Any]) -> PruneConfig:
    """The PruneConfig of a pruned recipe (unknown options are an error, not ignored)."""
    options = {k: v for k, v in recipe["prune"].items() if k != "method"}
    known = {f.name for f in fields(PruneConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"recipe's prune options {unknown} are not PruneConfig fields")
    return PruneConfig(**options)


def check(recipe: dict[str, Any]) -> None:
    if not isinstance(recipe, dict) or "base" not in recipe:
        raise ValueError(f"a model recipe is a dict with a 'base' model name, got {recipe!r}")
    unknown = sorted(set(recipe) - set(RECIPE_KEYS))
    if unknown:
        raise ValueError(f"unknown recipe keys {unknown}; expected some of {list(RECIPE_KEYS)}")


def label(recipe: dict[str, Any]) -> str:
    """A short human name: "smollm2-135m", "smollm2-135m slimllm 20%", "... + tune"."""
    text = recipe["base"]
    if "prune" in recipe:
        text += f" {recipe['prune']['method']} {recipe['prune']['ratio']:.0%}"
        if recipe["prune"].get("round_channels_to", 1) != 1:
            text += f" round {recipe['prune']['round_channels_to']}"
    if "tune" in recipe:
        text += " + tune"
    return text


def recipe_cache_dir() -> Path:
    return cache_dir() / "recipes"


def build(
    recipe: dict[str, Any],
    dtype: str = "float32",
    device: str = "cpu",
    data_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    progress: bool = False,
    rebuild: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The model a recipe describes, in `dtype` on `device`.

    A pruned (or tuned) model is built once (pruning and tuning on `device`; pruning in the
    recipe's prune dtype, tuning in float32), saved under the cache, and re-opened from there
    afterwards; `rebuild` builds it again and replaces the cached copy. A tuned recipe starts
    from its untuned recipe's model, itself built or taken from the cache.
    """
    check(recipe)

    if "prune" not in recipe and "tune" not in recipe:
        expected = recipe.get("weights_sha256")
        if expected is not None and weights_digest(recipe["base"]) != expected:
            raise ValueError(
                f"{recipe['base']}: its weights changed since this record was made "
                "(weights_sha256 differs); the record cannot be rebuilt"
            )
        return load_any(recipe["base"], dtype, device)
    folder = cached_folder(recipe)
    if use_cache and not rebuild and (folder / "config.json").is_file():
        return load_pruned(folder, dtype=parse_dtype(dtype), device=device)
    model, tokenizer, extra = make(recipe, device, data_dir, progress)
    if use_cache:
        save_pruned(model, tokenizer, folder, {**extra, "recipe": recipe}, overwrite=True)
    return model.to(device=device, dtype=parse_dtype(dtype)), tokenizer


def cached_folder(recipe: dict[str, Any]) -> Path:
    """Where `build` keeps the model of a pruned or tuned recipe."""
    return recipe_cache_dir() / config_key("recipe", recipe)


def make(
    recipe: dict[str, Any],
    device: str = "cpu",
    data_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
    store: Store | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, dict[str, Any]]:
    """Build a recipe's model: prune its base model (the pruning record is also written to
    `store`, by default the user's, as a "prune" record, where it has none for this recipe yet),
    or tune its untuned recipe's model.
    Returns the model, the tokenizer and what the cached folder's record holds (the pruning or
    tuning report)."""
    check(recipe)
    if "tune" in recipe:
        config = tune_config(recipe)
        model, tokenizer = build(untuned(recipe), "float32", device, data_dir, progress=progress)
        model, tuning = tune(
            model, tokenizer, config, data_dir=data_dir, device=device, progress=progress
        )
        return model, tokenizer, {"tune": tuning.to_dict()}

    prune_dtype = recipe.get("prune_dtype", "float32")
    model, tokenizer = load_model(recipe["base"], dtype=prune_dtype, device="cpu")
    report: dict[str, Any] = {}
    if "prune" in recipe:
        start = time.perf_counter()
        result = prune_with(
            recipe["prune"]["method"],
            model,
            tokenizer,
            prune_config(recipe),
            device=device,
            data_dir=data_dir,
            progress=progress,
        )
        report = result.to_dict()
        # The first pruning record of a recipe stays: rebuilding it (an emptied cache) may move
        # a float32 statistic in its ninth digit, which a protected store would refuse.
        target = store or Store()
        if target.get("prune", {"model": recipe}) is None:
            target.put(
                "prune",
                {"model": recipe},
                report,
                settings={"device": device},
                seconds=time.perf_counter() - start,
            )
    return model, tokenizer, report
