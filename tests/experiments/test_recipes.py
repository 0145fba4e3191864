"""Recipes: every pruning option spelled out, and clear errors for unknown keys."""

from __future__ import annotations

import json

import pytest

from slimllm.experiments import recipes
from slimllm.method.config import PruneConfig


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
