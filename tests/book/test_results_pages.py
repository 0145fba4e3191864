"""The Results pages: every number of a table names a record in the store, the pages' helpers
run on an empty store (cells "not run yet"), the README's headline table is the records', and
each results notebook runs in the smoke preset against a scratch store."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
import yaml

from slimllm.book import check_book, results, run_notebooks
from slimllm.experiments.store import Store
from tests.helpers import ROOT

RESULTS = ROOT / "results"
PAGES = sorted((ROOT / "notebooks" / "results").glob("[!.]*.ipynb"))

#: Every table of the Results pages, as its rows read from a store.
TABLES: dict[str, Callable[[str | None], list[results.Row]]] = {
    "table1": results.table1_rows,
    "flap": results.flap_rows,
    "table4": lambda d: results.ablation_rows(4, d),
    "table5": lambda d: results.ablation_rows(5, d),
    "table6": lambda d: results.ablation_rows(6, d),
    "table7": lambda d: results.ablation_rows(7, d),
    "tables2-8-9": results.other_model_rows,
}


def stored(key: str) -> bool:
    return any(RESULTS.glob(f"*/{key}.json"))


@pytest.mark.parametrize("table", list(TABLES))
def test_every_number_names_a_stored_record(table: str) -> None:
    rows = TABLES[table](str(RESULTS))
    found = results.numbers(rows)
    for label, column, value, key in found:
        assert stored(key), (table, label, column, key)
        assert value == value, (table, label, column)  # not NaN
    if table == "table1":
        assert len(found) > 100  # every method and column of Table 1 is stored


@pytest.mark.parametrize("table", list(TABLES))
def test_an_empty_store_reads_not_run_yet(table: str, tmp_path: Path) -> None:
    rows = TABLES[table](str(tmp_path))
    assert results.numbers(rows) == []
    shown = results.frame(rows, results.TABLE1_COLUMNS)
    assert (shown.to_numpy() == results.NOT_RUN).any()
    assert "not run yet" in results.missing(rows, results.TABLE1_COLUMNS).data


def test_page_helpers_run_on_an_empty_store(tmp_path: Path) -> None:
    empty = str(tmp_path)
    rows = results.table1_rows(empty)
    results.relative_figure(rows, "empty")
    results.retention_figure(results.other_model_rows(empty))
    results.calibration_figure(results.ablation_rows(7, empty))
    results.calibration_figure(results.ablation_rows(7, str(RESULTS)))
    results.coefficients_figure(empty)
    results.latency_figure(empty)
    results.cost_figure(empty)
    results.claims_figure(empty)
    for frame in (results.latency_frame(empty), results.cost_frame(empty)):
        assert results.NOT_RUN in frame.to_string()
    assert "not run yet" in results.first_sentences(empty).data
    assert "inconclusive" in results.claims_table(empty).data
    assert "not run yet" in results.claims_details(empty).data
    assert results.NOT_RUN in results.recompute_frame(empty).to_string()
    assert "store is empty" in results.recompute_lines(empty).data
    assert results.NOT_RUN in results.other_model_lines(results.other_model_rows(empty)).data
    assert "Tables 1, 4-7: 0 recipes" in results.paper_gpu_frame(empty).index[-1]


@pytest.mark.parametrize(("hours", "verdict"), [(1.0, "within"), (20.0, "beyond")])
def test_recompute_lines_follow_the_records(tmp_path: Path, hours: float, verdict: str) -> None:
    store = Store(tmp_path)
    env = {"cpu": {"model": "Test CPU"}, "torch_threads": 1}
    recipe = {"base": "m", "prune": {"method": "slimllm", "ratio": 0.5}}
    # A table cell and its model's pruning: what `make results` redoes.
    store.put("prune", {"model": recipe}, {"achieved": 0.5}, seconds=360.0, env=env)
    cell = {"ppl": 1.0, "ci": [0.9, 1.1], "record": "0" * 16, "seconds": hours * 3600}
    tuned = {**recipe, "tune": {"steps": 4}}  # its pruning is the untuned recipe's, counted once
    quick = {**cell, "seconds": 36.0}
    rows = [{"recipe": recipe, "wikitext2": cell}, {"recipe": tuned, "wikitext2": quick}]
    store.put("table1", {"t": 1}, {"rows": rows, "missing": []}, env=env)
    # A record no table shows (a stage notebook's, say) counts in the sum, not in the verdict.
    store.put("perplexity", {"n": 1}, {"ppl": 1.0}, seconds=30 * 3600, env=env)
    text = results.recompute_lines(str(tmp_path)).data
    assert "**30.1 h** of measurement" in text
    assert "the 2 cells the Results tables show" in text
    assert f"took **{hours + 0.01:.1f} h** and the 1 pruning runs of their models 0.1 h" in text
    assert f"about **{hours + 0.1:.1f} h** of process time" in text
    assert f"{verdict} the one-night target" in text
    assert "100% of these hours on one thread" in text


def test_a_changed_record_changes_the_table(tmp_path: Path) -> None:
    """The table shows what the record holds: edit a perplexity in a copy of the store."""
    copy = tmp_path / "results"
    shutil.copytree(RESULTS, copy)
    rows = results.table1_rows(str(copy))
    label, column, value, key = next(n for n in results.numbers(rows) if n[1] == "wikitext2")
    path = copy / "perplexity" / f"{key}.json"
    path.write_text(path.read_text().replace(repr(value), repr(value * 2), 1))
    again = results.numbers(results.table1_rows(str(copy)))
    assert (label, column, value * 2, key) in again


def test_readme_headline_table_matches_the_records() -> None:
    text = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- headline -->\n(.*?)\n<!-- /headline -->", text, re.S)
    assert found, "README.md lacks the headline table markers"
    assert found.group(1) == results.readme_table(Store.book(RESULTS))


def test_readme_fits_on_a_screen() -> None:
    assert len((ROOT / "README.md").read_bytes()) < 8000


def test_readme_cli_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert results.main(["--readme", "--results-dir", str(RESULTS)]) == 0
    assert capsys.readouterr().out.strip() == results.readme_table(Store.book(RESULTS))


def test_results_pages_are_in_the_toc_with_one_parameters_cell() -> None:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert PAGES
    for page in PAGES:
        assert f"notebooks/results/{page.stem}" in files
        assert run_notebooks.declared_parameters(page) == {"results_dir": None}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_committed_page_has_no_error_and_stores_its_figures(page: Path) -> None:
    nb = nbformat.read(page, as_version=4)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert any("image/png" in o.get("data", {}) for o in outputs), page.stem


@pytest.mark.notebooks
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_page_runs_in_smoke_preset_on_an_empty_store(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = page.read_bytes()
    monkeypatch.setenv("SLIMLLM_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("SLIMLLM_FIGURES_DIR", str(tmp_path / "figures"))
    argv = ["--preset", "smoke", "--output-dir", str(tmp_path), "--no-progress", str(page)]
    assert run_notebooks.main(argv) == 0
    assert page.read_bytes() == before
    executed = tmp_path / page.name
    nb = nbformat.read(executed, as_version=4)
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert check_book.check_notebook_figures(executed) == []


def test_other_model_lines_follow_the_records(tmp_path: Path) -> None:
    """SlimLLM's verdict against a peer on Gemma turns when the peer's record moves."""
    copy = tmp_path / "results"
    shutil.copytree(RESULTS, copy)
    line = next(
        x
        for x in results.other_model_lines(results.other_model_rows(str(copy))).data.split("\n")
        if "`llm-pruner`" in x
    )
    assert "(worse)" in line  # LLM-Pruner's WikiText-2 and PTB are lower on Gemma at 50 %
    rows = results.other_model_rows(str(copy))
    peer = next(
        r for r in rows
        if r.spec.recipe.get("prune", {}).get("method") == "llm-pruner"
        and "tune" not in r.spec.recipe and r.cells["wikitext2"] is not None
    )  # fmt: skip
    for column in ("wikitext2", "ptb"):
        path = copy / "perplexity" / f"{peer.cells[column].record}.json"
        data = json.loads(path.read_text())
        data["result"] = {k: v * 10 if k in ("ppl", "ci_low", "ci_high") else v
                          for k, v in data["result"].items()}  # fmt: skip
        path.write_text(json.dumps(data))
    text = results.other_model_lines(results.other_model_rows(str(copy))).data
    line = next(x for x in text.split("\n") if "`llm-pruner`" in x)
    assert "(worse)" not in line and "(better)" in line
