"""The results store: keys, records measured once, lookups, and the committed records."""

from __future__ import annotations

from pathlib import Path

import pytest

from slimllm.experiments.store import Store, config_key, resolve_results_dir
from slimllm.util.files import write_json
from tests.helpers import ROOT


def test_key_ignores_order_and_tuples_but_not_values() -> None:
    a = config_key("perplexity", {"model": {"base": "m"}, "windows": (1, 2)})
    b = config_key("perplexity", {"windows": [1, 2], "model": {"base": "m"}})
    assert a == b
    assert a != config_key("perplexity", {"windows": [1, 3], "model": {"base": "m"}})
    assert a != config_key("zeroshot", {"windows": [1, 2], "model": {"base": "m"}})


def test_run_measures_once_then_reads(tmp_path: Path) -> None:
    store = Store(tmp_path)
    calls = []

    def compute() -> dict[str, float]:
        calls.append(1)
        return {"ppl": 12.5}

    first = store.run("perplexity", {"model": {"base": "m"}}, compute, {"batch_size": 8})
    again = store.run("perplexity", {"model": {"base": "m"}}, compute)
    assert len(calls) == 1 and not first.loaded and again.loaded
    assert again.result == {"ppl": 12.5} and again.settings == {"batch_size": 8}
    assert again.environment["cpu"]["cores"] >= 1 and "torch" in again.environment["versions"]
    assert again.path == tmp_path / "perplexity" / f"{first.key}.json"
    store.run("perplexity", {"model": {"base": "m"}}, compute, recompute=True)
    assert len(calls) == 2


def test_find_matches_top_level_values(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for ds in ("wikitext2", "ptb"):
        store.put("perplexity", {"model": {"base": "m"}, "dataset": ds}, {"ppl": 1.0})
    store.put("zeroshot", {"model": {"base": "m"}}, {"mean": 0.5})
    assert {r.config["dataset"] for r in store.find("perplexity", model={"base": "m"})} == {
        "wikitext2",
        "ptb",
    }
    assert [r.kind for r in store.find("perplexity", dataset="ptb")] == ["perplexity"]
    assert len(list(store.records())) == 3


def test_read_rejects_a_file_that_is_not_a_record(tmp_path: Path) -> None:
    path = write_json(tmp_path / "x.json", {"hello": 1})
    with pytest.raises(ValueError, match="not a results record"):
        Store.read(path)


def test_results_dir_from_argument_then_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLIMLLM_RESULTS_DIR", str(tmp_path / "env"))
    assert resolve_results_dir() == tmp_path / "env"
    assert resolve_results_dir(tmp_path / "arg") == tmp_path / "arg"


def test_committed_records_are_readable_and_keyed_by_their_config() -> None:
    root = ROOT / "results"
    records = list(Store(root).records())
    assert records, "the checkout has no results records"
    for rec in records:
        assert rec.path is not None and rec.path.stem == config_key(rec.kind, rec.config)
