"""What recomputing a store costs: hours by kind of record, and the missing cells of the table
records counted once each and estimated at the medians of the measured ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from slimllm.experiments import recompute
from slimllm.experiments.store import Store

CPU = {"cpu": {"model": "Test CPU"}, "torch_threads": 1}
GPU = {"gpu": "Test GPU", "torch_threads": 8}


def recipe(base: str, ratio: float | None, seed: int = 42) -> dict[str, Any]:
    if ratio is None:
        return {"base": base}
    return {"base": base, "prune": {"method": "slimllm", "ratio": ratio, "seed": seed}}


def ppl(seconds: float) -> dict[str, Any]:
    return {"ppl": 10.0, "ci": [9.0, 11.0], "record": "0" * 16, "seconds": seconds}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path)
    # Measured cells: WikiText-2 in 100 and 300 s (median 200), PTB in 20 s.
    store.put("perplexity", {"n": 1}, {"ppl": 1.0}, seconds=100.0, env=CPU)
    store.put("perplexity", {"n": 2}, {"ppl": 1.0}, seconds=300.0, env=GPU)
    store.put("prune", {"model": recipe("m", 0.2)}, {"achieved": 0.2}, seconds=30.0, env=CPU)
    store.put("prune", {"model": recipe("m", 0.5)}, {"achieved": 0.5}, seconds=50.0, env=CPU)
    rows = [
        {"recipe": recipe("m", None), "wikitext2": ppl(100.0), "ptb": ppl(20.0)},
        {"recipe": recipe("m", 0.2), "wikitext2": ppl(300.0), "ptb": None, "zeroshot": None},
        # A row none of whose cells exists: it needs its pruning run as well.
        {"recipe": recipe("m", 0.5), "wikitext2": None, "ptb": None},
        # A method that refuses the model: nothing to measure.
        {"recipe": recipe("m", 0.9), "refused": {"error": "no"}, "wikitext2": None},
        # A model with no measured cell: counted, not estimated.
        {"recipe": recipe("other", None), "wikitext2": None},
    ]
    store.put("table1", {"t": 1}, {"rows": rows, "missing": []}, env=CPU)
    # Another table sharing the 50 % recipe, seed by seed: the shared cells count once.
    seeds = [
        {"seed": 42, "recipe": recipe("m", 0.5), "wikitext2": None, "ptb": None},
        {"seed": 43, "recipe": recipe("m", 0.5, 43), "wikitext2": None},
    ]
    store.put("ablation_table", {"t": 4}, {"rows": [{"seeds": seeds}], "missing": []}, env=CPU)
    # A timed recompute of all the above: its hours are theirs again, so no sum counts them.
    store.put("recompute_run", {"commit": "a"}, {"wall_seconds": 8 * 3600}, seconds=8 * 3600.0)
    return store


def test_time_by_kind_sums_hours_and_says_where(store: Store) -> None:
    found = {k.kind: k for k in recompute.time_by_kind(store)}
    assert found["perplexity"].hours == pytest.approx(400 / 3600)
    assert found["perplexity"].machines == {"Test CPU, 1 thread": 1, "Test GPU": 1}
    assert found["table1"].timed == 0 and found["table1"].records == 1
    assert next(iter(found)) == "perplexity"  # the most hours first
    assert "recompute_run" not in found


def test_missing_cells_are_counted_once_and_estimated(store: Store) -> None:
    todo = recompute.missing_cells(store)
    # m: PTB and zero-shot of 20 %, WikiText-2 and PTB of 50 % seed 42 (shared), WikiText-2
    # of 50 % seed 43; other: WikiText-2.
    assert todo.cells == {
        ("m", "ptb"): 2,
        ("m", "zeroshot"): 1,
        ("m", "wikitext2"): 2,
        ("other", "wikitext2"): 1,
    }
    assert todo.seconds == {("m", "wikitext2"): 200.0, ("m", "ptb"): 20.0}
    assert todo.prunes == {"m": 2}  # 50 % at seeds 42 and 43
    assert todo.prune_seconds == {"m": 40.0}
    assert todo.unestimated() == 2  # m's zero-shot and other's WikiText-2
    expected = 2 * 200.0 + 2 * 20.0 + 2 * 40.0
    assert todo.estimated_hours() == pytest.approx(expected / 3600)


def test_an_empty_store_needs_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    assert recompute.time_by_kind(store) == []
    todo = recompute.missing_cells(store)
    assert todo.cells == {} and todo.estimated_hours() == 0.0


def test_measured_hours_split_cpu_from_gpu(store: Store) -> None:
    spent = recompute.measured_hours(store)
    # CPU: a perplexity (100 s) and two prunes (30 s, 50 s), all on one thread; GPU: 300 s.
    assert spent.cpu == pytest.approx(180 / 3600)
    assert spent.one_thread == pytest.approx(spent.cpu)
    assert (spent.gpu, spent.gpu_records, spent.gpus) == (
        pytest.approx(300 / 3600),
        1,
        {"Test GPU"},
    )
    assert spent.records == 6  # the untimed table records count, without hours


def test_table_time_counts_each_shown_cell_and_pruning_once(store: Store) -> None:
    found = recompute.table_time(store)
    # Cells: dense WikiText-2 (100 s) and PTB (20 s), 20 % WikiText-2 (300 s); pruning: 20 %
    # (30 s) and 50 % (50 s, shown by both tables, counted once); 50 % seed 43 has no record.
    assert (found.cells, found.prunes) == (3, 2)
    assert found.cell_hours == pytest.approx(420 / 3600)
    assert found.hours == pytest.approx(500 / 3600)
