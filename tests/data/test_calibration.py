"""Calibration data: seeded windows of the novels, tokenizing in pieces, and a method's own
calibration corpus (read from the data folder, else the hub, else one line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from slimllm.cli import main
from slimllm.data.calibration import calibration_samples, calibration_text, tokenize_in_pieces
from slimllm.data.sources import DataError, file_sha256
from slimllm.experiments.recipes import pruned
from slimllm.method.config import PruneConfig
from slimllm.models.loaders import byte_tokenizer, load_model
from slimllm.peers.registry import METHODS, OWN_CALIBRATION, method_config
from tests.helpers import flap_prune_argv, write_novels

WIKI = " = Valkyria = \n the quick brown fox jumps over the lazy dog again and again . \n" * 60


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return write_novels(tmp_path, "a lantern swung over the quay while gulls argued " * 90)


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


def test_wikitext_validation_is_the_shared_folders_file(shared_data_dir: Path) -> None:
    text, origin = calibration_text(shared_data_dir, "wikitext2-valid")
    file = shared_data_dir / "wikitext2" / "wiki.valid.tokens"
    assert text == file.read_text(encoding="utf-8")
    assert origin == f"wikitext2/wiki.valid.tokens sha256:{file_sha256(file)}"
    test_split = (shared_data_dir / "wikitext2" / "wiki.test.tokens").read_text(encoding="utf-8")
    # The stand-in for FLAP's train split shares no article with the test split (titles made
    # only of <unk> say nothing and are left out).
    titles = {
        line
        for line in text.splitlines()
        if line.startswith(" = ") and "= =" not in line and line.strip(" =<unk>")
    }
    assert len(titles) > 50 and not titles & set(test_split.splitlines())


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
    argv = flap_prune_argv(data_dir, "--calib-data", "own")
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


def test_calibration_samples_are_seeded_windows(corpora_dir: Path) -> None:
    root, tok = corpora_dir, byte_tokenizer()
    a, origin = calibration_samples(tok, n_samples=4, seq_len=16, seed=42, data_dir=root)
    b, _ = calibration_samples(tok, n_samples=4, seq_len=16, seed=42, data_dir=root)
    c, _ = calibration_samples(tok, n_samples=4, seq_len=16, seed=7, data_dir=root)
    assert a.shape == (4, 16) and torch.equal(a, b) and not torch.equal(a, c)
    assert "2 files" in origin and "seed 42" in origin
    with_bos, _ = calibration_samples(tok, n_samples=2, seq_len=8, bos=True, data_dir=root)
    assert (with_bos[:, 0] == tok.bos_token_id).all()


def test_too_many_calibration_tokens_is_an_error(corpora_dir: Path) -> None:
    with pytest.raises(ValueError, match="calibration corpus holds only"):
        calibration_samples(byte_tokenizer(), n_samples=1000, seq_len=128, data_dir=corpora_dir)


def test_tokenizing_in_pieces_equals_whole_text() -> None:
    tok = byte_tokenizer()
    text = "\n\n".join(f"Paragraph {i}: the crew  sang.\nA line." for i in range(300))
    whole = tok(text, add_special_tokens=False).input_ids
    assert tokenize_in_pieces(tok, text, piece_chars=100).tolist() == whole


@pytest.mark.slow
def test_tokenizing_in_pieces_equals_whole_text_for_smollm2(shared_data_dir: Path) -> None:
    _, tok = load_model("smollm2-135m")
    text = calibration_text(shared_data_dir)[0][:400_000]
    whole = tok(text, add_special_tokens=False).input_ids
    assert tokenize_in_pieces(tok, text, piece_chars=20_000).tolist() == whole
