"""Atomic JSON writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from slimllm.util.files import write_json


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        write_json(tmp_path / "bad.json", {"x": object()})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_and_infinity_are_refused_naming_the_field(tmp_path: Path, bad: float) -> None:
    target = tmp_path / "r.json"
    write_json(target, {"keep": 1})
    with pytest.raises(ValueError, match=r"r\.json: result\.rows\[1\]\.ppl is NaN or infinite"):
        write_json(target, {"result": {"rows": [{"ppl": 1.0}, {"ppl": bad}]}})
    assert target.read_text() == '{\n "keep": 1\n}\n'  # the earlier file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
