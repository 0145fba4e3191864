"""Data directory handling, corpora layout, calibration sampling and task field checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import slimllm.data.sources as data_module
from slimllm.data.alpaca import load_alpaca
from slimllm.data.calibration import calibration_samples, tokenize_in_pieces
from slimllm.data.sources import DATA_ENV, DataError, resolve_data_dir
from slimllm.data.tasks import load_task
from slimllm.data.texts import load_text, load_text_rows
from slimllm.models.loaders import byte_tokenizer


def make_data_dir(root: Path) -> Path:
    (root / "wikitext2").mkdir(parents=True)
    (root / "wikitext2" / "wiki.test.raw").write_text(" \n = Title = \n \n Body text here . \n")
    (root / "ptb").mkdir()
    (root / "ptb" / "ptb.test.txt").write_text(" a b c \n d e \n")
    novels = root / "bookcorpus_substitute_gutenberg"
    novels.mkdir()
    (novels / "a.txt").write_text("It was a dark and stormy night. " * 40)
    (novels / "b.txt").write_text("Call me Ishmael. " * 40)
    return root


def test_data_dir_from_argument_env_checkout_or_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.setattr(data_module, "CHECKOUT_DATA", tmp_path / "absent")
    assert resolve_data_dir() is None
    monkeypatch.setattr(data_module, "CHECKOUT_DATA", tmp_path)
    assert resolve_data_dir() == tmp_path
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert resolve_data_dir() == tmp_path
    assert resolve_data_dir(tmp_path / "..") == tmp_path / ".."


def test_missing_data_dir_names_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "nope"))
    with pytest.raises(DataError, match=r"\$SLIMLLM_DATA_DIR points at .*nope"):
        load_text("wikitext2")
    with pytest.raises(DataError, match="data_dir argument"):
        load_text("wikitext2", data_dir=tmp_path / "nope")


def test_missing_file_names_dataset_and_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"dataset 'ptb-valid'.*ptb\.valid\.txt"):
        load_text("ptb-valid", data_dir=make_data_dir(tmp_path))


def test_text_rows_follow_the_hub_layout(tmp_path: Path) -> None:
    root = make_data_dir(tmp_path)
    rows, origin = load_text_rows("wikitext2", root)
    assert rows == ["", " = Title = \n", "", " Body text here . \n"]
    assert "sha256:" in origin
    assert load_text("ptb", root) == "a b c\n\nd e"
    with pytest.raises(DataError, match="unknown text dataset"):
        load_text("c4", root)


def test_calibration_samples_are_seeded_windows(tmp_path: Path) -> None:
    root, tok = make_data_dir(tmp_path), byte_tokenizer()
    a, origin = calibration_samples(tok, n_samples=4, seq_len=16, seed=42, data_dir=root)
    b, _ = calibration_samples(tok, n_samples=4, seq_len=16, seed=42, data_dir=root)
    c, _ = calibration_samples(tok, n_samples=4, seq_len=16, seed=7, data_dir=root)
    assert a.shape == (4, 16) and torch.equal(a, b) and not torch.equal(a, c)
    assert "2 files" in origin and "seed 42" in origin
    with_bos, _ = calibration_samples(tok, n_samples=2, seq_len=8, bos=True, data_dir=root)
    assert (with_bos[:, 0] == tok.bos_token_id).all()


def test_too_many_calibration_tokens_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="calibration corpus holds only"):
        calibration_samples(
            byte_tokenizer(), n_samples=1000, seq_len=128, data_dir=make_data_dir(tmp_path)
        )


def test_task_without_expected_fields_is_named(tmp_path: Path) -> None:
    (tmp_path / "piqa").mkdir()
    good = {"goal": "g", "sol1": "a", "sol2": "b", "label": 0}
    bad = {"goal": "g", "sol1": "a", "label": 1}
    (tmp_path / "piqa" / "valid_with_labels.jsonl").write_text(
        json.dumps(good) + "\n" + json.dumps(bad) + "\n"
    )
    with pytest.raises(DataError, match=r"record 1 .* lacks field\(s\) \['sol2'\]"):
        load_task("piqa", tmp_path)


def test_broken_json_is_named(tmp_path: Path) -> None:
    (tmp_path / "alpaca_cleaned").mkdir()
    (tmp_path / "alpaca_cleaned" / "alpaca_data_cleaned_first5000.json").write_text("[{")
    with pytest.raises(DataError, match="not valid JSON"):
        load_alpaca(tmp_path)


def test_shared_data_has_every_dataset(shared_data_dir: Path) -> None:
    for name in ("wikitext2", "ptb", "ptb-valid"):
        rows, _ = load_text_rows(name, shared_data_dir)
        assert len(rows) > 3000
    sizes = {
        t: len(load_task(t, shared_data_dir)[0])
        for t in ("boolq", "piqa", "arc_easy", "openbookqa")
    }
    assert sizes == {"boolq": 3270, "piqa": 1838, "arc_easy": 2376, "openbookqa": 500}
    assert len(load_alpaca(shared_data_dir, limit=10)) == 10


def test_tokenizing_in_pieces_equals_whole_text() -> None:
    tok = byte_tokenizer()
    text = "\n\n".join(f"Paragraph {i}: the crew  sang.\nA line." for i in range(300))
    whole = tok(text, add_special_tokens=False).input_ids
    assert tokenize_in_pieces(tok, text, piece_chars=100).tolist() == whole


@pytest.mark.slow
def test_tokenizing_in_pieces_equals_whole_text_for_smollm2(shared_data_dir: Path) -> None:
    from slimllm.data.calibration import calibration_text
    from slimllm.models.loaders import load_model

    _, tok = load_model("smollm2-135m")
    text = calibration_text(shared_data_dir)[0][:400_000]
    whole = tok(text, add_special_tokens=False).input_ids
    assert tokenize_in_pieces(tok, text, piece_chars=20_000).tolist() == whole
