"""Recipes: every pruning option spelled out, and clear errors for unknown keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from slimllm.experiments import recipes
from slimllm.method.config import PruneConfig
from slimllm.models.io import save_pruned, weights_digest
from slimllm.models.loaders import load_model


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
