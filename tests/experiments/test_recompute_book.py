"""benchmarks/recompute_book.py: the lanes' commands, a failure stopping every lane, and the
agreement of a recomputed store with the reference records."""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from slimllm.experiments.recompute import agreement
from slimllm.experiments.store import Store
from tests.helpers import load_benchmark

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "recompute_book.py"


@pytest.fixture(scope="module")
def book() -> ModuleType:
    return load_benchmark("recompute_book")


def test_every_lane_runs_every_table_script_on_its_own_share(book: ModuleType) -> None:
    steps = book.plan(3)
    assert list(steps) == ["lane 1", "lane 2", "lane 3", "alone", "assemble"]
    for k in (1, 2, 3):
        commands = steps[f"lane {k}"]
        assert len(commands) == len(book.LANE_SCRIPTS)
        for cmd in commands:
            assert cmd[-4:] == ["--part", f"{k}/3", "--threads", "1"]
    assert all("--part" not in c for c in steps["alone"] + steps["assemble"])
    assert all(c[-1] == "--assemble" for c in steps["assemble"])
    # flap_harness writes no table record: it has nothing to assemble.
    assert not any(c[1].endswith("flap_harness.py") for c in steps["assemble"])


def py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_failure_stops_the_other_lanes(book: ModuleType, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    runner = book.Runner({}, io.StringIO())
    start = time.monotonic()
    runner.lanes(
        {
            "lane 1": [py("print('one'); raise SystemExit(3)")],
            "lane 2": [py("import time; time.sleep(60)"), py(f"open({str(marker)!r}, 'w')")],
        }
    )
    assert time.monotonic() - start < 30  # lane 2's sleeper was stopped, not waited for
    assert runner.failed is not None and "exited with 3" in runner.failed
    assert not marker.exists()  # and lane 2's next command never started
    assert "[lane 1] one" in runner.log.getvalue()


def test_a_resumed_run_sums_its_segments(book: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "segments.json"
    first = book.Segments(path, {}, "abc")
    first.beat(phase="lanes")
    first.beat(load=2.0)
    time.sleep(0.05)
    first.beat(load=3.0)  # then the process is killed: no finishing beat
    kept = json.loads(path.read_text())
    assert len(kept) == 1 and not kept[0]["finished"] and kept[0]["seconds"] >= 0.05

    second = book.Segments(path, {"perplexity": 4}, "def")
    second.beat(phase="lanes", load=1.0)
    time.sleep(0.05)
    second.beat(phase="alone")
    second.beat(finished=True)
    run = second.summary()
    segs = json.loads(path.read_text())
    assert [s["commit"] for s in segs] == ["abc", "def"] and segs[-1]["finished"]
    assert run["wall_seconds"] == pytest.approx(segs[0]["seconds"] + segs[1]["seconds"])
    assert run["phase_seconds"]["lanes"] >= 0.1 and "alone" in run["phase_seconds"]
    assert run["records_before"] == {}  # the first segment's: the run started from empty
    assert run["load"]["samples"] == 3 and run["load"]["mean"] == pytest.approx(2.0)
    assert run["load"]["max"] == 3.0 and run["load"]["unsampled_seconds"] == 0
    assert [s["load_samples"] for s in run["segments"]] == [2, 1]

    # A finished run is not resumed: the next command starts a new one.
    third = book.Segments(path, {"perplexity": 9}, "ghi")
    assert third.summary()["records_before"] == {"perplexity": 9}
    assert len(third.summary()["segments"]) == 1


def test_a_stopped_timed_run_resumes_and_records_both_segments(
    book: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference, scratch = tmp_path / "book", tmp_path / "scratch"
    monkeypatch.setenv("SLIMLLM_RESULTS_DIR", str(reference))
    args = ["recompute_book.py", "--store", str(scratch), "--summary", "--lanes", "1"]
    monkeypatch.setattr(sys, "argv", args)
    fail = {"lane 1": [py("raise SystemExit(2)")], "alone": [], "assemble": []}
    monkeypatch.setattr(book, "plan", lambda lanes: fail)
    with pytest.raises(SystemExit, match="run the same command to resume"):
        book.main()
    segments = json.loads((scratch / book.Segments.FILE).read_text())
    assert len(segments) == 1 and not segments[0]["finished"]
    assert not (reference / "recompute_run").exists()

    work = {"lane 1": [py("pass")], "alone": [py("pass")], "assemble": [py("pass")]}
    monkeypatch.setattr(book, "plan", lambda lanes: work)
    book.main()
    (record,) = Store(reference).records("recompute_run")
    run = record.result
    assert len(run["segments"]) == 2 and run["empty_at_start"]
    assert run["wall_seconds"] == pytest.approx(sum(s["seconds"] for s in run["segments"]))
    assert set(run["phase_seconds"]) == {"lanes", "alone", "assemble"}
    assert json.loads((scratch / book.Segments.FILE).read_text())[-1]["finished"]


def test_segments_in_memory_write_nothing(book: ModuleType, tmp_path: Path) -> None:
    segments = book.Segments(None, {}, "abc")
    segments.beat(phase="lanes", load=1.0)
    segments.beat(finished=True)
    assert segments.summary()["wall_seconds"] >= 0 and not list(tmp_path.iterdir())


def ppl(value: float, low: float, high: float) -> dict[str, Any]:
    return {"ppl": value, "ci_low": low, "ci_high": high, "seconds": 1.0}


def zs(values: dict[str, float]) -> dict[str, Any]:
    tasks = {t: {"value": v} for t, v in values.items()}
    return {"tasks": tasks, "mean": sum(values.values()) / len(values)}


def prune(heads: list[int], params: int, a_mean: float, seconds: float = 1.0) -> dict[str, Any]:
    layer = {"attention_mode": "heads", "channels_kept": 8, "attn_a_mean": a_mean}
    layers = [{**layer, "heads_kept": [0, h]} for h in heads]
    return {"params_after": params, "layers": layers, "seconds": seconds}


def test_agreement_compares_records_of_the_same_configuration(tmp_path: Path) -> None:
    ref, new = Store(tmp_path / "ref"), Store(tmp_path / "new")
    ref.put("perplexity", {"n": 1}, ppl(10.0, 9.0, 11.0))
    ref.put("perplexity", {"n": 2}, ppl(20.0, 19.0, 21.0))
    new.put("perplexity", {"n": 1}, ppl(10.5, 9.5, 11.5))  # inside
    new.put("perplexity", {"n": 2}, ppl(22.0, 21.0, 23.0))  # outside: +10 %
    new.put("perplexity", {"n": 3}, ppl(1.0, 0.5, 1.5))  # no reference: not compared
    ref.put("zeroshot", {"z": 1}, zs({"a": 0.5, "b": 0.6}))
    new.put("zeroshot", {"z": 1}, zs({"a": 0.5, "b": 0.62}))
    ref.put("prune", {"p": 1}, prune([3, 4], 100, 1.0, 5.0))
    new.put("prune", {"p": 1}, prune([3, 4], 100, 1.0, 7.0))  # the time alone differs
    ref.put("prune", {"p": 2}, prune([3, 4], 100, 1.0))
    new.put("prune", {"p": 2}, prune([3, 4], 100, 1.0 + 1e-9))  # same shape, other numbers
    ref.put("prune", {"p": 3}, prune([3, 4], 100, 1.0))
    new.put("prune", {"p": 3}, prune([3, 5], 100, 1.0))  # another layer kept other heads
    found = agreement(ref, new)
    assert (found.perplexity, found.ppl_inside) == (2, 1)
    assert found.ppl_worst == pytest.approx(0.1)
    assert (found.zeroshot, found.zeroshot_equal) == (1, 0)
    assert found.zeroshot_worst == pytest.approx(1.0)  # (0.62 - 0.60) / 2 tasks, in points
    assert (found.prune, found.prune_same_structure, found.prune_equal) == (3, 2, 1)


def test_an_identical_store_agrees_everywhere(tmp_path: Path) -> None:
    ref = Store(tmp_path)
    ref.put("perplexity", {"n": 1}, ppl(10.0, 9.0, 11.0))
    ref.put("zeroshot", {"z": 1}, zs({"a": 0.5}))
    found = agreement(ref, ref)
    assert (found.ppl_inside, found.zeroshot_equal, found.ppl_worst) == (1, 1, 0.0)
