"""Evaluation texts read from the data folder: the hub's row layout, a missing file named."""

from __future__ import annotations

from pathlib import Path

import pytest

from slimllm.data.sources import DataError
from slimllm.data.texts import load_text, load_text_rows


def test_text_rows_follow_the_hub_layout(corpora_dir: Path) -> None:
    root = corpora_dir
    rows, origin = load_text_rows("wikitext2", root)
    assert rows == ["", " = Title = \n", "", " Body text here . \n"]
    assert "sha256:" in origin
    assert load_text("ptb", root) == "a b c\n\nd e"
    with pytest.raises(DataError, match="unknown text dataset"):
        load_text("c4", root)


def test_missing_file_names_dataset_and_path(corpora_dir: Path) -> None:
    with pytest.raises(DataError, match=r"dataset 'ptb-valid'.*ptb\.valid\.txt"):
        load_text("ptb-valid", data_dir=corpora_dir)
