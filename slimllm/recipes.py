"""Model recipes: a JSON description of a model that any record can rebuild it from.

A recipe is `{"base": NAME}` for a dense model, plus `"prune": {"method": ..., **options}` and
`"prune_dtype"` for a pruned one (and `"tune": {...}` once recovery fine-tuning has run). A
pruned model is deterministic given its recipe, so records key on the recipe rather than on a
folder, and `build` keeps each built model in a disk cache so the same recipe is pruned once.
"""

from __future__ import annotations

import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from slimllm.models import DEFAULT_MODEL, cache_dir, load_model, parse_dtype
from slimllm.pruner import PruneConfig
from slimllm.store import config_key

if TYPE_CHECKING:
    from slimllm.tune import TuneConfig

RECIPE_KEYS = ("base", "prune", "prune_dtype", "tune")


def dense(base: str = DEFAULT_MODEL) -> dict[str, Any]:
    return {"base": base}


def pruned(
    config: PruneConfig,
    base: str = DEFAULT_MODEL,
    method: str = "slimllm",
    prune_dtype: str = "float32",
) -> dict[str, Any]:
    """The recipe of `base` pruned with `config` (every field spelled out, defaults included)."""
    return {"base": base, "prune": {"method": method, **asdict(config)}, "prune_dtype": prune_dtype}


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
    from slimllm.tune import TuneConfig

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
        return load_model(recipe["base"], dtype=dtype, device=device)
    from slimllm.io import load_pruned, save_pruned

    folder = cached_folder(recipe)
    if use_cache and not rebuild and (folder / "config.json").is_file():
        return load_pruned(folder, dtype=parse_dtype(dtype), device=device)
    model, tokenizer, extra = _make(recipe, device, data_dir, progress)
    if use_cache:
        save_pruned(model, tokenizer, folder, {"recipe": recipe, **extra}, overwrite=True)
    return model.to(device=device, dtype=parse_dtype(dtype)), tokenizer


def cached_folder(recipe: dict[str, Any]) -> Path:
    """Where `build` keeps the model of a pruned or tuned recipe."""
    return recipe_cache_dir() / config_key("recipe", recipe)


def _make(
    recipe: dict[str, Any],
    device: str,
    data_dir: str | os.PathLike[str] | None,
    progress: bool,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, dict[str, Any]]:
    """The recipe's model and what its cached folder's record adds (the tuning report)."""
    if "tune" in recipe:
        from slimllm.tune import tune

        config = tune_config(recipe)
        model, tokenizer = build(untuned(recipe), "float32", device, data_dir, progress=progress)
        model, report = tune(model, tokenizer, config, data_dir, device, progress)
        return model, tokenizer, {"tune": report.to_dict()}
    from slimllm.pruner import prune

    prune_dtype = recipe.get("prune_dtype", "float32")
    model, tokenizer = load_model(recipe["base"], dtype=prune_dtype, device="cpu")
    if "prune" in recipe:
        method = recipe["prune"]["method"]
        if method != "slimllm":
            raise ValueError(f"unknown pruning method {method!r} in recipe")
        prune(
            model,
            tokenizer,
            prune_config(recipe),
            device=device,
            data_dir=data_dir,
            progress=progress,
        )
    return model, tokenizer, {}
