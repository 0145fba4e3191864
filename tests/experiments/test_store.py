"""The results store: keys, records measured once, lookups, and the committed records."""

from __future__ import annotations

from pathlib import Path

import pytest

from slimllm.experiments.store import (
    Store,
    StoreError,
    config_key,
    differences,
    resolve_results_dir,
)
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
    assert Store.book().root == tmp_path / "env"


def test_ad_hoc_runs_default_to_the_user_folder_not_the_book(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLIMLLM_RESULTS_DIR")
    monkeypatch.setenv("SLIMLLM_CACHE_DIR", str(tmp_path / "cache"))
    assert Store().root == tmp_path / "cache" / "results" and not Store().protect
    book = Store.book()
    assert book.root == ROOT / "results" and book.protect
    # The book's folder stays protected when named by path or through the environment.
    assert Store(ROOT / "results").protect
    monkeypatch.setenv("SLIMLLM_RESULTS_DIR", str(ROOT / "results"))
    assert Store().protect


@pytest.mark.parametrize("kind", ["../../x", "a/b", "", "Perplexity", "x.json", 3])
def test_kinds_that_could_leave_the_root_are_refused(tmp_path: Path, kind: object) -> None:
    with pytest.raises(StoreError, match="record kind"):
        Store(tmp_path).put(kind, {"a": 1}, {"b": 2})  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_a_protected_store_refuses_other_numbers_and_shows_them(tmp_path: Path) -> None:
    store = Store(tmp_path, protect=True)
    config = {"model": {"base": "m"}, "dataset": "wikitext2"}
    first = store.put("perplexity", config, {"ppl": 237.58, "seconds": 70.7})
    before = first.path.read_bytes()
    # The same number measured again (another wall time) keeps the record as it was.
    assert store.put("perplexity", config, {"ppl": 237.58, "seconds": 275.0}).loaded
    # So does `replace` (a finished benchmark run again leaves its records and git alone).
    assert store.put("perplexity", config, {"ppl": 237.58}, replace=True).loaded
    assert first.path.read_bytes() == before
    with pytest.raises(StoreError, match=r"ppl: 237\.58 -> 233\.83.*--replace"):
        store.put("perplexity", config, {"ppl": 233.83, "seconds": 70.0})
    assert first.path.read_bytes() == before
    replaced = store.put("perplexity", config, {"ppl": 233.83, "seconds": 70.0}, replace=True)
    assert Store.read(replaced.path).result["ppl"] == 233.83
    # The user's own store replaces without asking.
    assert Store(tmp_path).put("perplexity", config, {"ppl": 1.0}).result == {"ppl": 1.0}


def test_differences_name_paths_and_ignore_volatile_fields() -> None:
    old = {"ppl": 1.0, "rows": [{"a": 1}, {"a": 2}], "seconds": 3, "versions": {"torch": "x"}}
    new = {"ppl": 1.0, "rows": [{"a": 1}, {"a": 5}], "seconds": 9, "versions": {"torch": "y"}}
    assert differences(old, new) == ["rows[1].a: 2 -> 5"]
    assert differences(old, {**old, "new": 1}) == ["new: (absent) -> 1"]


def test_nan_in_a_configuration_is_refused() -> None:
    with pytest.raises(StoreError, match="alpha is NaN or infinite"):
        config_key("prune", {"alpha": float("nan")})


def test_a_corrupt_record_names_its_file(tmp_path: Path) -> None:
    path = tmp_path / "perplexity" / "0123456789abcdef.json"
    path.parent.mkdir()
    path.write_text('{"kind": "perplexity", "config"')
    with pytest.raises(StoreError, match=r"0123456789abcdef\.json: not a readable results record"):
        list(Store(tmp_path).records())


def test_committed_records_are_readable_and_keyed_by_their_config() -> None:
    root = ROOT / "results"
    records = list(Store(root).records())
    assert records, "the checkout has no results records"
    for rec in records:
        assert rec.path is not None and rec.path.stem == config_key(rec.kind, rec.config)
