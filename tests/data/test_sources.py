"""The data folder: where it is found, and the checks on the files read from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import slimllm.data.sources as data_module
from slimllm.data.alpaca import load_alpaca
from slimllm.data.sources import DATA_ENV, DataError, resolve_data_dir
from slimllm.data.tasks import load_task
from slimllm.data.texts import load_text, load_text_rows


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
