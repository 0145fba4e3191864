"""The command line on the tiny model: prune, save, evaluate, and clear errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from slimllm.cli import build_parser, main
from slimllm.experiments.store import Store
from slimllm.models.io import load_pruned
from slimllm.models.loaders import load_model
from tests.helpers import small_calibration_argv, write_novels


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_novels(tmp_path_factory.mktemp("data"), "A whale of a tale, told twice. " * 200)
    (root / "wikitext2").mkdir()
    (root / "wikitext2" / "wiki.test.raw").write_text(
        " = Heading = \n \n Some body text about ships . \n" * 30
    )
    return root


def test_prune_then_eval(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pruned"
    args = [
        "prune",
        "tiny-gqa",
        "--ratio",
        "0.3",
        "--ratio-of",
        "decoder",
        "--layers",
        "3",
        "--out",
        str(out),
    ]
    args += small_calibration_argv(data_dir)
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "achieved" in printed and f"saved to {out}" in printed
    model, _ = load_pruned(out)
    record = model.config.slimllm["record"]
    assert record["config"]["ratio"] == 0.3 and record["model"] == "tiny-gqa"

    report = tmp_path / "ppl.json"
    eval_args = [
        "eval",
        str(out),
        "--ppl",
        "wikitext2",
        "--max-windows",
        "2",
        "--data-dir",
        str(data_dir),
    ]
    assert main([*eval_args, "--json", str(report), "--device", "cpu"]) == 0
    results = json.loads(report.read_text())["results"]
    assert results[0]["config"]["dataset"] == "wikitext2"
    assert results[0]["result"]["n_windows"] == 2
    # The store holds the pruning and the evaluation, keyed by the recipe the folder records.
    (stored,) = Store().find("perplexity", dataset="wikitext2")
    assert stored.config["model"] == record["recipe"] and stored.config["dtype"] in (
        "float32",
        "bfloat16",
    )
    assert Store().find("prune", model=record["recipe"])


def test_existing_out_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "keep.txt").write_text("x")
    assert main(["prune", "tiny-gqa", "--ratio", "0.2", "--out", str(tmp_path)]) == 2
    assert "exists and is not empty (pass --overwrite)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["prune", "--ratio", "1.5", "--out", "x"], "must be in \\[0, 1\\)"),
        (["prune", "--ratio", "0.2", "--alpha", "0", "--out", "x"], "must be in \\(0, 100\\]"),
        (["eval", "m", "--ppl", "c4"], "choose from wikitext2, ptb, ptb-valid"),
    ],
)
def test_bad_arguments_name_the_option(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)
    assert re.search(message, capsys.readouterr().err)


def test_runtime_errors_are_one_line(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "prune",
        "tiny-gqa",
        "--ratio",
        "0.9",
        "--max-layer-ratio",
        "0.5",
        "--out",
        str(tmp_path / "o"),
    ]
    assert (
        main([*argv, "--data-dir", str(data_dir), "--calib-samples", "4", "--calib-seq-len", "16"])
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("slimllm prune: error:") and "unreachable" in err
    assert not (tmp_path / "o").exists()


def test_help_states_each_default_once(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("prune", "eval"):
        with pytest.raises(SystemExit):
            build_parser().parse_args([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "(default: None)" not in text
        assert "default: 10 below 35%, else 7)" in text or command == "eval"
        assert "(default: 42)" in text or command == "eval"


def test_folders_that_are_not_models_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["eval", str(empty), "--max-windows", "1"]) == 2
    assert "is not a model folder (it has no config.json)" in capsys.readouterr().err
    model, _ = load_model("tiny-llama")
    model.save_pretrained(tmp_path / "no-tok")
    assert main(["eval", str(tmp_path / "no-tok"), "--max-windows", "1"]) == 2
    assert "has no tokenizer files" in capsys.readouterr().err


def test_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["prune", "--help"])
    text = capsys.readouterr().out
    for option in (
        "--ratio",
        "--out",
        "--alpha",
        "--calib-samples",
        "--seed",
        "--device",
        "--dtype",
        "--no-greedy",
    ):
        assert option in text
