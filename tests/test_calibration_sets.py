"""A method's own calibration corpus: read from the data folder, else the hub, else one line."""

import json
from pathlib import Path

import pytest

from slimllm.cli import main
from slimllm.data.calibration import calibration_samples, calibration_text
from slimllm.data.sources import DataError
from slimllm.experiments.recipes import pruned
from slimllm.method.config import PruneConfig
from slimllm.models.loaders import byte_tokenizer
from slimllm.peers.registry import METHODS, OWN_CALIBRATION, method_config

WIKI = " = Valkyria = \n the quick brown fox jumps over the lazy dog again and again . \n" * 60


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    novels = tmp_path / "bookcorpus_substitute_gutenberg"
    novels.mkdir()
    (novels / "a.txt").write_text("a lantern swung over the quay while gulls argued " * 90)
    return tmp_path


def test_wikitext_train_is_read_from_the_data_folder(data_dir: Path) -> None:
    (data_dir / "wikitext2").mkdir()
    (data_dir / "wikitext2" / "wiki.train.raw").write_text(WIKI)
    text, origin = calibration_text(data_dir, "wikitext2-train")
    assert text == WIKI
    assert origin.startswith("wikitext2/wiki.train.raw sha256:")
    tok = byte_tokenizer()
    ids, where = calibration_samples(tok, 4, 16, 0, data_dir=data_dir, dataset="wikitext2-train")
    assert ids.shape == (4, 16)
    assert "wikitext2/wiki.train.raw" in where
    # The windows are pieces of the WikiText text, not of the novels.
    assert all(tok.decode(row.tolist()) in WIKI for row in ids)


def test_c4_records_are_joined_from_jsonl(data_dir: Path) -> None:
    (data_dir / "c4").mkdir()
    rows = [{"text": f"document number {i} about tides", "url": "u"} for i in range(3)]
    (data_dir / "c4" / "c4-train.00000-of-01024.json").write_text(
        "\n".join(json.dumps(r) for r in rows) + "\n"
    )
    text, origin = calibration_text(data_dir, "c4")
    assert text == "\n\n".join(r["text"] for r in rows)
    assert origin.startswith("c4/")


def test_a_missing_own_corpus_offline_is_one_clear_error(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match=r"calibration set 'wikitext2-train': .*wiki\.train\.raw"):
        calibration_text(data_dir, "wikitext2-train")
    with pytest.raises(DataError, match="unknown calibration set 'c5'"):
        calibration_text(data_dir, "c5")


def test_config_and_recipe() -> None:
    with pytest.raises(ValueError, match="calib_dataset must be one of"):
        PruneConfig(calib_dataset="c5").validate()
    # The default stays out of recipes, so records made before the field existed still match.
    assert "calib_dataset" not in pruned(PruneConfig())["prune"]
    assert pruned(PruneConfig(calib_dataset="c4"))["prune"]["calib_dataset"] == "c4"
    assert set(OWN_CALIBRATION) == set(METHODS)


def test_cli_own_data(
    tmp_path: Path,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    argv = [
        "prune",
        "tiny-gqa",
        "--method",
        "flap",
        "--ratio",
        "0.3",
        "--ratio-of",
        "decoder",
        "--calib-samples",
        "8",
        "--calib-seq-len",
        "32",
        "--calib-data",
        "own",
        "--data-dir",
        str(data_dir),
        "--device",
        "cpu",
    ]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "calibration set 'wikitext2-train'" in err[0]
    (data_dir / "wikitext2").mkdir()
    (data_dir / "wikitext2" / "wiki.train.raw").write_text(WIKI)
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0
    record = json.loads((tmp_path / "b" / "config.json").read_text())["slimllm"]["record"]
    assert record["config"]["calib_dataset"] == "wikitext2-train"
    assert "wikitext2/wiki.train.raw" in record["calibration"]
    assert method_config("flap").calib_dataset == "bookcorpus"
