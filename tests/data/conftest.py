"""Fixtures of the data tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import write_novels


@pytest.fixture
def corpora_dir(tmp_path: Path) -> Path:
    """A data folder with a few lines of WikiText-2 and PTB test text and two short novels."""
    (tmp_path / "wikitext2").mkdir(parents=True)
    (tmp_path / "wikitext2" / "wiki.test.raw").write_text(" \n = Title = \n \n Body text here . \n")
    (tmp_path / "ptb").mkdir()
    (tmp_path / "ptb" / "ptb.test.txt").write_text(" a b c \n d e \n")
    return write_novels(tmp_path, "It was a dark and stormy night. " * 40, "Call me Ishmael. " * 40)
