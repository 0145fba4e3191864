"""Result files: reuse only on an exact configuration match, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slimllm.results import cached_run, write_json


def test_cached_run_reuses_only_the_same_config(tmp_path: Path) -> None:
    calls = []

    def compute() -> dict[str, float]:
        calls.append(1)
        return {"ppl": 12.5 + len(calls)}

    path = tmp_path / "r.json"
    first, entry = cached_run(path, {"model": "m", "windows": (1, 2)}, compute)
    assert first == {"ppl": 13.5} and entry["loaded"] is False
    again, entry = cached_run(path, {"model": "m", "windows": [1, 2]}, compute)
    assert again == first and entry["loaded"] is True and len(calls) == 1
    other, _ = cached_run(path, {"model": "other", "windows": [1, 2]}, compute)
    assert other == {"ppl": 14.5} and len(calls) == 2
    forced, _ = cached_run(path, {"model": "other", "windows": [1, 2]}, compute, recompute=True)
    assert forced == {"ppl": 15.5}
    assert "transformers" in json.loads(path.read_text())["versions"]


def test_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    path = write_json(tmp_path / "a.json", {"x": 1})
    with pytest.raises(TypeError):
        write_json(path, {"x": object()})
    assert json.loads(path.read_text()) == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_written_files_are_readable_by_others(tmp_path: Path) -> None:
    path = write_json(tmp_path / "r.json", {"x": 1})
    assert path.stat().st_mode & 0o044 == 0o044
