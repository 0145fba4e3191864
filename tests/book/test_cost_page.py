"""The cost page's tables of the speed work read their records: pruning under two commits
(`prune_cost` records with a `code`), zero-shot speed and one process against two."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from slimllm.book import results
from slimllm.experiments.store import Store
from tests.helpers import ROOT

OLD, NEW = "f" * 40, "a" * 40


def prune_config(ratio: float, code: str, calib: str | None) -> dict[str, Any]:
    prune: dict[str, Any] = {"method": "slimllm", "ratio": ratio}
    if calib is not None:
        prune["calib_dtype"] = calib
    case = f"smollm2-135m@{ratio * 100:.0f}" + ("-bf16" if calib else "")
    model = {"base": "smollm2-135m", "prune": prune, "prune_dtype": "float32"}
    return {"model": model, "case": case, "code": code}


def put_prune(
    store: Store,
    ratio: float,
    code: str,
    calib: str | None,
    cpu: float,
    weights: str,
    ppl: float | None,
    when: str,
    layouts: str | None = None,
) -> str:
    result = {
        "seconds": cpu + 1.0,
        "cpu_seconds": cpu,
        "achieved": ratio + 0.003,
        "peak_rss_mib": 1200.0,
        "peak_over_loaded": 1.5,
        "weights_sha256": weights,
        "layouts_sha256": layouts or weights,
    }
    if ppl is not None:
        result["wikitext2_ppl_256_windows"] = ppl
    config = prune_config(ratio, code, calib)
    return store.put("prune_cost", config, result, env={"measured_at": when}).key


def test_an_empty_store_reads_not_run_yet(tmp_path: Path) -> None:
    empty = str(tmp_path)
    for frame in (
        results.prune_speed_frame(empty),
        results.zeroshot_speed_frame(empty),
        results.eval_processes_frame(empty),
    ):
        assert results.NOT_RUN in frame.to_string()
    for lines in (
        results.prune_speed_lines(empty),
        results.zeroshot_speed_lines(empty),
        results.eval_processes_lines(empty),
    ):
        assert results.NOT_RUN in lines.data


def test_prune_rows_order_codes_by_time_and_compare_weights(tmp_path: Path) -> None:
    store = Store(tmp_path)
    # The older code's hash sorts after the newer one's: the order must come from measured_at.
    old = put_prune(store, 0.2, OLD, None, 40.0, "w1", None, "2026-01-01T10:00:00+00:00")
    new = put_prune(store, 0.2, NEW, None, 20.0, "w1", 100.0, "2026-01-01T11:00:00+00:00")
    put_prune(store, 0.5, OLD, None, 30.0, "w2", None, "2026-01-01T10:00:00+00:00")
    put_prune(store, 0.5, NEW, None, 40.0, "w3", 300.0, "2026-01-01T11:00:00+00:00")
    # Left out: a record of prune_cost_methods.py (method) and one of notebook 8 (no code).
    store.put("prune_cost", {"x": 1}, {"method": "flap", "seconds": 1.0})
    store.put("prune_cost", {"x": 2}, {"seconds": 1.0, "achieved": 0.2})
    frame = results.prune_speed_frame(str(tmp_path))
    assert list(frame.index) == [
        ("smollm2-135m@20", OLD[:8]),
        ("smollm2-135m@20", NEW[:8]),
        ("smollm2-135m@50", OLD[:8]),
        ("smollm2-135m@50", NEW[:8]),
    ]
    assert list(frame["record"])[:2] == [old, new]
    assert list(frame["weights as first"]) == ["", "yes", "", "no"]
    assert list(frame["choices as first"]) == ["", "yes", "", "no"]
    assert list(frame["CPU (s)"]) == ["40.0", "20.0", "30.0", "40.0"]
    assert list(frame["WikiText-2"]) == ["", "100.00", "", "300.00"]
    assert list(frame["calib"]) == ["float32"] * 4
    lines = results.prune_speed_lines(str(tmp_path)).data.splitlines()
    assert f"from 40.0 with {OLD[:8]} to 20.0 with {NEW[:8]}: 2.00x faster" in lines[0]
    assert f"the same weights as {OLD[:8]}" in lines[0]
    assert "21.0 s wall, **not under** the 10 s target" in lines[0]
    assert "1.33x slower" in lines[1] and f"**other heads or channels than {OLD[:8]}**" in lines[1]
    assert "target" not in lines[1]


def test_the_perplexity_gate_passes_and_fails(tmp_path: Path) -> None:
    store = Store(tmp_path)
    when = "2026-01-01T10:00:00+00:00"
    put_prune(store, 0.2, NEW, None, 30.0, "a", 100.0, when)
    put_prune(store, 0.2, NEW, "bfloat16", 15.0, "b", 100.3, when)
    put_prune(store, 0.5, NEW, None, 30.0, "c", 400.0, when)
    put_prune(store, 0.5, NEW, "bfloat16", 15.0, "d", 404.0, when)
    frame = results.prune_speed_frame(str(tmp_path))
    assert list(frame["calib"]) == ["float32", "bfloat16", "float32", "bfloat16"]
    assert list(frame["weights as first"]) == ["", "", "", ""]
    lines = results.prune_speed_lines(str(tmp_path)).data.splitlines()
    assert "one code only" in lines[1]
    assert "100.30 against 100.00" in lines[1] and "+0.30 %): passes the 0.5 % gate" in lines[1]
    assert "404.00 against 400.00" in lines[3] and "+1.00 %): **fails** the 0.5 % gate" in lines[3]
    assert "gate" not in lines[0] + lines[2]


def test_the_book_shows_every_committed_speed_record_oldest_code_first() -> None:
    store = Store.book(ROOT / "results")
    keys = {r.key for r in store.records("prune_cost") if "code" in r.config}
    frame = results.prune_speed_frame(str(ROOT / "results"))
    assert set(frame.get("record", [])) == keys
    for found in results.prune_speed_cases(str(ROOT / "results")).values():
        times = [results._commit_time(r.config["code"]) for r in found]
        if 0 in times:
            pytest.skip("this checkout's git lacks a recorded commit")
        # The codes of one run share measured_at: the commits' dates decide.
        assert times == sorted(times)


ZS_DTYPE = {
    "subset": {
        "seconds": 200.0,
        "cpu_seconds": 150.0,
        "load_before": 2.0,
        "load_after": 3.0,
        "items": {"boolq": 500, "piqa": 500},
        "mean": 0.45,
    },
    "compare": {
        "limit": 50,
        "times": {"fast": {"seconds": 10.0}, "hflm": {"seconds": 30.0}},
        "speedup": 3.0,
        "fast_vs_hflm": {
            "accuracy_equal": True,
            "verdicts_differ": {"boolq": 0, "piqa": 0},
            "means": [0.5, 0.5],
            "requests": 100,
            "max_abs_diff": 5e-5,
            "greedy_differ": 0,
        },
    },
}


def zeroshot_result(float32_seconds: float, float32_diff: float) -> dict[str, Any]:
    bf16, fp32 = copy.deepcopy(ZS_DTYPE), copy.deepcopy(ZS_DTYPE)
    fp32["subset"]["seconds"] = float32_seconds
    fp32["compare"]["fast_vs_hflm"]["max_abs_diff"] = float32_diff
    bf16["compare"]["fast_vs_hflm"] |= {"max_abs_diff": 0.8, "verdicts_differ": {"boolq": 3}}
    bf16["compare"]["hflm_vs_hflm_other_batch"] = {
        **bf16["compare"]["fast_vs_hflm"],
        "max_abs_diff": 0.4,
        "verdicts_differ": {"piqa": 1},
        "greedy_differ": 2,
    }
    return {"target_seconds": 300, "bfloat16": bf16, "float32": fp32}


def put_zeroshot(store: Store, seed: int, result: dict[str, Any], when: str) -> str:
    config = {"limit": 500, "seed": seed, "dtypes": ["bfloat16", "float32"]}
    env = {"measured_at": when, "cpu": {"model": "CPU"}, "torch_threads": 2}
    return store.put("zeroshot_speed", config, result, env=env).key


def test_zeroshot_speed_shows_the_newest_record(tmp_path: Path) -> None:
    store = Store(tmp_path)
    newest = put_zeroshot(store, 0, zeroshot_result(400.0, 2e-4), "2026-01-02T00:00:00+00:00")
    put_zeroshot(store, 1, zeroshot_result(100.0, 1e-5), "2026-01-01T00:00:00+00:00")
    frame = results.zeroshot_speed_frame(str(tmp_path))
    assert list(frame.columns) == ["bfloat16", "float32"]
    assert frame.index.name == f"record {newest}"
    assert list(frame.loc["500 per task: under 300 s"]) == ["yes", "no"]
    assert frame.loc["500 per task: items", "float32"] == "1000"
    assert frame.loc["50 per task: speed-up", "bfloat16"] == "3.00x"
    assert frame.loc["fast vs HFLM: differing", "bfloat16"] == "3 verdicts, 0 of 100 greedy flags"
    assert frame.loc["HFLM vs HFLM, other batch: max |Δ log-lik.|", "bfloat16"] == "0.4"
    assert frame.loc["HFLM vs HFLM, other batch: max |Δ log-lik.|", "float32"] == ""
    text = results.zeroshot_speed_lines(str(tmp_path)).data
    assert f"`{newest}`" in text and "(1 older record not shown)" in text
    bf16, fp32 = text.splitlines()[-2:]
    assert "200 s against the 300 s target (met)" in bf16
    assert "2.00x HFLM's own rounding" in bf16
    assert "400 s against the 300 s target (**not met**)" in fp32
    assert "float32 target of 1e-04 is **not met**" in fp32


EVAL_RESULT = {
    "agreement": {
        "windows": 64,
        "ppl_equal": True,
        "window_nll_equal": True,
        "window_nll_max_abs_diff": 0.0,
        "zeroshot": {
            "accuracy_equal": True,
            "verdicts_differ": {"boolq": 0},
            "means": [0.55, 0.55],
            "requests": 441,
            "max_abs_diff": 3e-5,
            "greedy_differ": 0,
        },
    },
    "one": {
        "seconds": 300.0,
        "perplexity_seconds": 100.0,
        "zeroshot_seconds": 190.0,
        "ppl": 63.8,
        "mean": 0.55,
    },
    "two": {
        "seconds": 200.0,
        "perplexity_seconds": 80.0,
        "zeroshot_seconds": 110.0,
        "ppl": 63.8,
        "launch_seconds": 260.0,
        "processes": 2,
        "mean": 0.55,
    },
}


def test_eval_processes_equal_and_differing(tmp_path: Path) -> None:
    config = {"windows": 64, "limit": 20, "processes": 2}
    settings = {"launcher": "accelerate launch --multi_gpu (torchrun), gloo"}
    store = Store(tmp_path / "equal")
    key = store.put("eval_processes", config, EVAL_RESULT, settings).key
    frame = results.eval_processes_frame(str(tmp_path / "equal"))
    assert list(frame.columns) == ["1 process", "2 processes", "1 against 2 processes"]
    assert frame.index.name == f"record {key}"
    row = frame.loc["WikiText-2, first 64 windows"]
    assert list(row) == ["63.8000", "63.8000", "equal; each window's NLL equal"]
    assert frame.loc["measuring (s)", "1 against 2 processes"] == "1.50x as fast (shared cores)"
    text = results.eval_processes_lines(str(tmp_path / "equal")).data
    assert "2 processes give one process's perplexity" in text
    assert f"`{results.ACCELERATE_EVAL}`" in text
    changed = copy.deepcopy(EVAL_RESULT)
    changed["agreement"] |= {"ppl_equal": False, "window_nll_equal": False}
    changed["agreement"]["window_nll_max_abs_diff"] = 0.002
    changed["two"]["ppl"] = 63.9
    Store(tmp_path / "differ").put("eval_processes", config, changed, settings)
    frame = results.eval_processes_frame(str(tmp_path / "differ"))
    row = frame.loc["WikiText-2, first 64 windows"]
    assert row["1 against 2 processes"] == "differs; each window's NLL differ by up to 0.002"
    assert "do **not** give" in results.eval_processes_lines(str(tmp_path / "differ")).data


def test_the_accelerate_command_is_the_readme_and_protocol_page_command() -> None:
    for page in ("README.md", "book/protocol.md"):
        assert results.ACCELERATE_EVAL in (ROOT / page).read_text(), page


def test_model_names_come_from_the_records(tmp_path: Path) -> None:
    store = Store(tmp_path)
    put_prune(store, 0.2, NEW, None, 1.0, "w", None, "2026-01-01T00:00:00+00:00")
    records = list(store.records("prune_cost"))
    assert results.models_of(records) == "SmolLM2-135M"
    assert results.models_of([]) == ""
    assert results.model_name("random-llama-1b") == "random-llama-1b"


def test_a_new_code_with_the_same_choices_and_a_fast_run(tmp_path: Path) -> None:
    store = Store(tmp_path)
    when = "2026-01-01T10:00:00+00:00"
    put_prune(store, 0.2, OLD, None, 30.0, "w1", 100.0, when)
    # Same heads and channels (layout digest), weights that differ in rounding.
    put_prune(store, 0.2, NEW, None, 8.0, "w2", 100.0, "2026-01-01T11:00:00+00:00", layouts="w1")
    frame = results.prune_speed_frame(str(tmp_path))
    assert list(frame["choices as first"]) == ["", "yes"]
    assert list(frame["weights as first"]) == ["", "no"]
    line = results.prune_speed_lines(str(tmp_path)).data
    assert f"the same heads and channels as {OLD[:8]}, weights that differ in rounding" in line
    assert "9.0 s wall, under the 10 s target" in line


def put_recompute(
    store: Store, hours: float, empty: bool, mean_load: float, when: str, **more: Any
) -> str:
    result = {
        "wall_seconds": hours * 3600,
        "phase_seconds": {"lanes": hours * 3600 - 900, "alone": 600.0, "assemble": 300.0},
        "empty_at_start": empty,
        "records_before": {} if empty else {"perplexity": 3},
        "records_made": {"perplexity": 150, "zeroshot": 40},
        "load": {"samples": 400, "mean": mean_load, "max": mean_load + 1},
        "agreement": {
            "perplexity": 150,
            "ppl_inside": 149,
            "ppl_worst": 0.012,
            "zeroshot": 40,
            "zeroshot_equal": 38,
            "zeroshot_worst": 0.25,
            "prune": 90,
            "prune_same_structure": 90,
            "prune_equal": 12,
        },
        **more,
    }
    config = {"commit": (f"{hours:.4f}" * 40)[:40], "lanes": 2, "steps": {}}
    env = {"cpu": {"model": "Test CPU"}, "measured_at": when}
    return store.put("recompute_run", config, result, seconds=hours * 3600, env=env).key


def test_a_timed_recompute_is_read_from_its_record(tmp_path: Path) -> None:
    store = Store(tmp_path)
    assert "No timed recompute" in results.recompute_run_lines(str(tmp_path)).data
    # A run into a store that already held records is not a recompute from scratch.
    put_recompute(store, 1.0, False, 2.0, "2026-01-03T00:00:00+00:00")
    assert "No timed recompute" in results.recompute_run_lines(str(tmp_path)).data
    key = put_recompute(store, 7.5, True, 2.0, "2026-01-01T00:00:00+00:00")
    text = results.recompute_run_lines(str(tmp_path)).data
    assert key in text and "**7 h 30 min** (27,000 s)" in text
    assert "within the one-night target of 8 h, with 30 min to spare" in text
    assert "149 of 150 perplexities" in text and "1.20 %" in text and "38 of 40" in text
    assert "90 of 90 pruning runs keep the same heads" in text and "(12 equal" in text
    assert "Test CPU" in text
    assert "shared the cores" not in text
    # A newer, slower and busier run replaces it on the page, and the words follow.
    put_recompute(store, 9.0, True, 2.6, "2026-01-02T00:00:00+00:00")
    text = results.recompute_run_lines(str(tmp_path)).data
    assert "**9 h 0 min**" in text and "beyond the one-night target of 8 h by 60 min" in text
    assert "shared the cores" in text
    assert "segments" not in text and ".." not in text
    # A near miss is told in seconds, not rounded away.
    put_recompute(store, 8 + 2 / 3600, True, 2.0, "2026-01-04T00:00:00+00:00")
    text = results.recompute_run_lines(str(tmp_path)).data
    assert "**8 h 0 min** (28,802 s)" in text
    assert "latency alone 10 min and writing the tables 5 min" in text
    assert "beyond the one-night target of 8 h by 2 s" in text


def test_a_recompute_in_segments_says_so(tmp_path: Path) -> None:
    segment = {"started": "", "seconds": 3600.0, "commit": "a" * 40}
    segments = [
        {**segment, "source": "file times of its log", "load_samples": 0},
        {**segment, "source": "this script, each minute", "load_samples": 60},
        {**segment, "source": "this script, each minute", "load_samples": 60, "commit": "b" * 40},
    ]
    sampled = {"samples": 120, "mean": 1.9, "max": 2.1, "unsampled_seconds": 3600.0}
    when = "2026-01-01T00:00:00+00:00"
    phases = {"lanes": 10000.0, "alone": 480.8, "assemble": 16.6}
    put_recompute(
        Store(tmp_path), 3.0, True, 1.9, when, segments=segments, load=sampled, phase_seconds=phases
    )
    text = results.recompute_run_lines(str(tmp_path)).data
    assert "latency alone 8 min and writing the tables 17 s" in text
    assert "It ran in 3 segments" in text and "was not sampled for 1.0 h" in text
    assert "The times of 1 segment(s) come from their log's file times" in text
    assert "segments ran at commits `aaaaaaaa`, `bbbbbbbb`" in text
    assert "shared the cores" not in text and ".." not in text
