"""Atomic JSON writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from slimllm.util.files import write_json


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        write_json(tmp_path / "bad.json", {"x": object()})
    assert list(tmp_path.iterdir()) == []
