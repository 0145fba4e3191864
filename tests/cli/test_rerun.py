"""`slimllm rerun`: a stored record measured again, and the records it cannot re-run."""

from __future__ import annotations

from pathlib import Path

import pytest

from slimllm.cli import main
from slimllm.experiments import recipes
from slimllm.experiments.runners import measure_perplexity
from slimllm.experiments.store import Store


def test_rerun_measures_a_record_again(
    tmp_path: Path, shared_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(tmp_path)
    rec = measure_perplexity(
        recipes.dense("tiny-llama"), "wikitext2", max_windows=2, store=store, progress=False
    )
    assert main(["rerun", str(rec.path)]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.startswith("ppl "))
    assert line.split()[-1] == "0.00e+00"  # deterministic: the same number again
    assert Store.read(rec.path).environment == rec.environment  # not rewritten without --write


def test_rerun_rejects_unknown_kinds_and_missing_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = Store(tmp_path).put("mystery", {"a": 1}, {"b": 2})
    assert main(["rerun", str(rec.path)]) == 2
    assert "cannot be re-run" in capsys.readouterr().err
    assert main(["rerun", str(tmp_path / "none.json")]) == 2
    assert "is not a file" in capsys.readouterr().err
