"""The stored studies of the stage notebooks: their runners ("nb_channels", "nb_similarity"),
the SlimLLM variants they prune, and the prune record of such a variant.
"""

from __future__ import annotations

import os
import time
from typing import Any

from torch import Tensor, nn

from slimllm.analysis.probes import calibration_ids, channel_study, layer_similarity_samples
from slimllm.experiments.recipes import check, make, pruned, recipe_cache_dir
from slimllm.experiments.store import Record, Store, config_key
from slimllm.method.config import PruneConfig
from slimllm.models.io import save_pruned
from slimllm.models.loaders import load_model


def _calibration(config: dict[str, Any], settings: dict[str, Any]) -> tuple[nn.Module, Tensor]:

    model, tokenizer = load_model(config["model"], dtype=config["dtype"], device="cpu")
    ids = calibration_ids(
        model,
        tokenizer,
        config["calib_samples"],
        config["calib_seq_len"],
        config["seed"],
        settings.get("data_dir"),
    )
    return model, ids


def run_nb_channels(config: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Runner of an "nb_channels" record: :func:`channel_study` of a dense model.

    config: model, dtype, calib_samples, calib_seq_len, seed, keep_fractions, spectrum_layers.
    """
    model, ids = _calibration(config, settings)
    return channel_study(
        model,
        ids,
        tuple(config["keep_fractions"]),
        tuple(config["spectrum_layers"]),
        settings.get("batch_size", 8),
        settings.get("device", "cpu"),
    )


def run_nb_similarity(config: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Runner of an "nb_similarity" record: :func:`layer_similarity_samples` of a dense model.

    config: model, dtype, calib_samples, calib_seq_len, seed.
    """
    model, ids = _calibration(config, settings)
    sims = layer_similarity_samples(
        model, ids, settings.get("batch_size", 8), settings.get("device", "cpu")
    )
    return {"per_sample": sims.tolist(), "mean": sims.mean(dim=1).tolist()}


def variant_recipe(
    model: str,
    ratio: float,
    alpha: float | None = None,
    calib_samples: int = 32,
    calib_seq_len: int = 128,
    seed: int = 42,
    prune_dtype: str = "float32",
    **options: Any,
) -> dict[str, Any]:
    """The recipe of ``model`` pruned by SlimLLM at ``ratio`` with the notebooks' parameters.

    ``options`` are further `PruneConfig` fields (e.g. ``regression=False`` for an ablation).
    """

    config = PruneConfig(
        ratio=ratio,
        alpha=alpha,
        calib_samples=calib_samples,
        calib_seq_len=calib_seq_len,
        seed=seed,
        **options,
    )
    config.validate()
    return pruned(config, base=model, prune_dtype=prune_dtype)


def prune_record(
    recipe: dict[str, Any],
    device: str = "cpu",
    data_dir: str | os.PathLike[str] | None = None,
    store: Store | None = None,
    fields: tuple[str, ...] = (),
) -> Record:
    """The "prune" record (a PruneReport) of a pruned recipe, pruning it if the store lacks it.

    A stored record whose layer reports lack one of ``fields`` (made before the pruner recorded
    them, e.g. ``"attn_error_before"``) is measured again and replaced. The pruned model goes
    where `slimllm.experiments.recipes.build` looks for it, so evaluating the recipe does not
    prune again.
    """

    check(recipe)
    if recipe.get("prune", {}).get("method") != "slimllm" or "tune" in recipe:
        raise ValueError(f"prune_record needs a recipe pruned with slimllm, got {recipe!r}")
    store = store or Store()
    config = {"model": recipe}
    found = store.get("prune", config)
    if found is not None and all(
        name in layer for layer in found.result["layers"] for name in fields
    ):
        return found
    start = time.perf_counter()
    model, tokenizer, report = make(recipe, device, data_dir)
    seconds = time.perf_counter() - start
    folder = recipe_cache_dir() / config_key("recipe", recipe)
    save_pruned(model, tokenizer, folder, {**report, "recipe": recipe}, overwrite=True)
    # A record without `fields` is an older measurement of the same recipe: replaced on purpose.
    return store.put(
        "prune", config, report, settings={"device": device}, seconds=seconds, replace=True
    )
