"""Where the command line's records go and what keys them: a tuned copy is its own model,
`rerun --write` replaces on purpose, --results-dir chooses the folder, and bench's dense
reference is the base the pruned folder was made from."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from slimllm.cli import common, main
from slimllm.experiments import recipes
from slimllm.experiments.recipes import of_folder
from slimllm.experiments.runners import measure_perplexity
from slimllm.experiments.store import CHECKOUT_RESULTS, Store
from tests.helpers import small_calibration_argv, write_novels

WORDS = ["sun", "moon", "star", "rain", "snow", "wind", "leaf", "tree"]
ALPACA = [{"instruction": f"Say {w}.", "input": "", "output": w} for w in WORDS * 2]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_novels(tmp_path_factory.mktemp("data"), "Call me Ishmael, said the sailor. " * 200)
    (root / "wikitext2").mkdir()
    (root / "wikitext2" / "wiki.test.raw").write_text(" = Ships = \n \n A body of text . \n" * 30)
    return root


@pytest.fixture(scope="module")
def pruned(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("pruned") / "tiny"
    argv = ["prune", "tiny-gqa", "--ratio", "0.3", "--ratio-of", "decoder", "--out", str(out)]
    assert main([*argv, *small_calibration_argv(data_dir)]) == 0
    return out


def evaluate(folder: Path, data_dir: Path, *more: str) -> int:
    argv = ["eval", str(folder), "--ppl", "wikitext2", "--max-windows", "2", "--device", "cpu"]
    return main([*argv, "--dtype", "float32", "--data-dir", str(data_dir), *more])


def test_eval_of_a_tuned_copy_is_a_record_of_its_own(
    pruned: Path, data_dir: Path, tmp_path: Path
) -> None:
    assert evaluate(pruned, data_dir) == 0
    (first,) = Store().records("perplexity")
    assert first.path is not None
    before = first.path.read_bytes()
    alpaca = tmp_path / "alpaca.json"
    alpaca.write_text(json.dumps(ALPACA))
    tuned = tmp_path / "tuned"
    argv = ["tune", str(pruned), "--out", str(tuned), "--data", str(alpaca), "--device", "cpu"]
    argv += ["--val-size", "4", "--batch-size", "4", "--micro-batch-size", "4", "--max-steps", "1"]
    assert main(argv) == 0
    recipe = of_folder(tuned)
    assert recipe["tune"]["max_steps"] == 1 and recipe["prune"] == of_folder(pruned)["prune"]
    assert evaluate(tuned, data_dir) == 0
    records = {r.key: r for r in Store().records("perplexity")}
    assert len(records) == 2 and first.key in records
    assert records[first.key].path.read_bytes() == before  # type: ignore[union-attr]
    (other,) = (r for key, r in records.items() if key != first.key)
    assert other.config["model"] == recipe and "tune" not in first.config["model"]
    # A recipe holds one tuning run: the tuned copy is not tuned again.
    again = ["tune", str(tuned), "--out", str(tmp_path / "twice"), "--data", str(alpaca)]
    assert main(again) == 2 and not (tmp_path / "twice").exists()


def test_results_dir_chooses_the_folder_and_the_run_says_where(
    pruned: Path, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chosen = tmp_path / "elsewhere"
    assert evaluate(pruned, data_dir, "--results-dir", str(chosen)) == 0
    assert (
        f"records written under {chosen} (another folder: --results-dir" in capsys.readouterr().out
    )
    assert len(list(Store(chosen).records("perplexity"))) == 1
    assert not list(Store().records("perplexity"))


def test_rerun_write_replaces_the_record(
    tmp_path: Path, shared_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = measure_perplexity(
        recipes.dense("tiny-llama"), "wikitext2", max_windows=2, store=Store(tmp_path)
    )
    assert rec.path is not None
    stored = json.loads(rec.path.read_text())
    stored["result"]["ppl"] *= 2  # as if measured elsewhere, so that the replacement shows
    rec.path.write_text(json.dumps(stored))
    assert main(["rerun", str(rec.path), "--device", "cpu", "--write"]) == 0
    assert f"record replaced: {rec.path}" in capsys.readouterr().out
    assert Store.read(rec.path).result["ppl"] == pytest.approx(stored["result"]["ppl"] / 2)


def test_bench_defaults_to_the_recipe_base(
    pruned: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bench", str(pruned), "--repeats", "1", "--warmup", "0", "--prefill-len", "8"]
    argv += ["--batch", "1", "--new-tokens", "2", "--prompt-len", "4", "--dtype", "float32"]
    assert main([*argv, "--device", "cpu"]) == 0
    assert "dense reference: tiny-gqa" in capsys.readouterr().out
    assert main([*argv, "--dense", "tiny-llama"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--dense tiny-llama is not the architecture" in err


def test_the_checkout_results_folder_is_protected(tmp_path: Path) -> None:
    """Records the command line writes into the book's evidence never replace other numbers
    there without --replace; any other folder is the user's to overwrite."""
    assert common.results_store(argparse.Namespace(results_dir=CHECKOUT_RESULTS)).protect
    assert not common.results_store(argparse.Namespace(results_dir=tmp_path)).protect
