"""Recipes: every pruning option spelled out, and clear errors for unknown keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from slimllm.experiments import recipes
from slimllm.experiments.store import Store
from slimllm.method.config import PruneConfig
from slimllm.models.io import save_pruned, weights_digest
from slimllm.models.loaders import load_model
from tests.helpers import write_novels


def test_recipes_spell_out_every_option() -> None:
    recipe = recipes.pruned(PruneConfig(ratio=0.5), base="tiny-gqa")
    assert recipe["prune"]["method"] == "slimllm" and recipe["prune"]["gqa_mode"] == "score"
    assert recipes.prune_config(recipe) == PruneConfig(ratio=0.5)
    assert recipes.label(recipe) == "tiny-gqa slimllm 50%"
    with pytest.raises(ValueError, match="not PruneConfig fields"):
        recipes.prune_config({"base": "m", "prune": {"method": "slimllm", "colour": 1}})
    with pytest.raises(ValueError, match="unknown recipe keys"):
        recipes.check({"base": "m", "pruned": {}})
    json.dumps(recipe)


def _saved_tiny(folder: Path, recipe: dict[str, object]) -> Path:
    model, tokenizer = load_model("tiny-gqa")
    return save_pruned(model, tokenizer, folder, {"recipe": recipe})


def test_a_folder_is_its_recipe_while_its_weights_are_unchanged(tmp_path: Path) -> None:
    recipe = {"base": "tiny-gqa"}
    folder = _saved_tiny(tmp_path / "m", recipe)
    assert recipes.of_folder(folder) == recipe
    # Weights changed after the recipe was written (tuning, an edit): keyed by the weights now.
    weights = folder / "model.safetensors"
    tensors = load_file(weights)
    name = sorted(tensors)[0]
    tensors[name] = tensors[name] + 1
    save_file(tensors, weights, metadata={"format": "pt"})
    changed = recipes.of_folder(folder)
    assert changed["base"] == str(folder.resolve()) and changed != recipe
    assert changed["weights_sha256"] == weights_digest(folder)
    assert recipes.build(changed)[0] is not None  # the same weights rebuild it
    tensors[name] = tensors[name] + 1
    save_file(tensors, weights, metadata={"format": "pt"})
    with pytest.raises(ValueError, match="weights changed since this record"):
        recipes.build(changed)


def test_a_plain_checkpoint_folder_is_keyed_by_its_weights(tmp_path: Path) -> None:
    model, _ = load_model("tiny-llama")
    model.save_pretrained(tmp_path / "plain")
    identity = recipes.of_folder(tmp_path / "plain")
    assert identity == {
        "base": str((tmp_path / "plain").resolve()),
        "weights_sha256": weights_digest(tmp_path / "plain"),
    }


def test_rebuilding_a_recipe_keeps_its_first_pruning_record(tmp_path: Path) -> None:
    """An emptied cache prunes a recipe again; the protected store's record of the first
    pruning stays, even where the new run's float32 statistics differ in a late digit."""
    data = write_novels(tmp_path / "data", "the cat sat on the mat. " * 400)
    config = PruneConfig(ratio=0.3, calib_samples=4, calib_seq_len=16)
    recipe = recipes.pruned(config, base="tiny-gqa")
    store = Store(tmp_path / "results", protect=True)
    recipes.make(recipe, data_dir=data, store=store)
    first = store.get("prune", {"model": recipe})
    assert first is not None
    # Stand in for a rebuild whose statistics moved: the stored record holds other numbers.
    edited = {**first.result, "alpha": first.result["alpha"] + 1e-9}
    store.put("prune", {"model": recipe}, edited, replace=True)
    assert first.path is not None
    before = first.path.read_bytes()
    recipes.make(recipe, data_dir=data, store=store)  # no StoreError
    assert first.path.read_bytes() == before
