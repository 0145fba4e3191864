"""`slimllm rerun`: a stored record measured again, and the records it cannot re-run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from slimllm.cli import main
from slimllm.cli.rerun import other_differences
from slimllm.experiments import recipes
from slimllm.experiments.runners import measure_perplexity
from slimllm.experiments.store import Store
from slimllm.method.config import PruneConfig


def test_rerun_measures_a_record_again(
    tmp_path: Path, shared_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(tmp_path)
    rec = measure_perplexity(
        recipes.dense("tiny-llama"), "wikitext2", max_windows=2, store=store, progress=False
    )
    assert main(["rerun", str(rec.path)]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.startswith("ppl "))
    assert line.split()[-1] == "0.00e+00"  # deterministic: the same number again
    assert Store.read(rec.path).environment == rec.environment  # not rewritten without --write


def test_rerun_rejects_unknown_kinds_and_missing_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = Store(tmp_path).put("mystery", {"a": 1}, {"b": 2})
    assert main(["rerun", str(rec.path)]) == 2
    assert "cannot be re-run" in capsys.readouterr().err
    assert main(["rerun", str(tmp_path / "none.json")]) == 2
    assert "is not a file" in capsys.readouterr().err


def test_rerun_of_a_pruning_compares_the_weights_bit_for_bit(
    tmp_path: Path,
    shared_data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A prune record is pruned again without the cache; its weights are compared with the
    recipe cache's copy (the record itself holds no digest) and its per-layer reports exactly."""
    monkeypatch.setenv("SLIMLLM_CACHE_DIR", str(tmp_path / "cache"))
    recipe = recipes.pruned(
        PruneConfig(ratio=0.3, calib_samples=2, calib_seq_len=16, seed=1), base="tiny-gqa"
    )
    recipes.build(recipe)  # prunes, caches the model, writes the prune record to the user store
    rec = next(r for r in Store().records("prune") if r.config == {"model": recipe})
    assert "weights_sha256" not in rec.result
    assert main(["rerun", str(rec.path)]) == 0
    out = capsys.readouterr().out
    assert "lists and text (per-layer reports included): identical" in out
    assert "weights: bit-identical to the cached model" in out
    # Without the cached copy there is nothing to compare the weights with, and it says so.
    shutil.rmtree(recipes.cached_folder(recipe))
    assert main(["rerun", str(rec.path)]) == 0
    assert "no digest stored and no cached copy" in capsys.readouterr().out


def test_other_differences_names_the_paths_that_differ() -> None:
    old = {"a": 1.0, "layers": [{"kept": [0, 1], "score": 0.5}], "name": "x", "seconds": 3.0}
    assert other_differences(old, {**old, "a": 2.0, "seconds": 9.0}) == []  # numbers shown apart
    new = {**old, "layers": [{"kept": [0, 2], "score": 0.5000000000000001}], "name": "y"}
    assert other_differences(old, new) == ["layers[0].kept[1]", "layers[0].score", "name"]
    assert other_differences(old, {**old, "layers": []}) == ["layers (length 1 against 0)"]
