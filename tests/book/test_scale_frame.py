"""The cost page's table of the LLaMA-7B/13B-shape runs reads the `prune_scale` records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slimllm.book import results
from slimllm.experiments.store import Store
from tests.helpers import ROOT


def scale_result(seconds: float, peak_mib: float) -> dict[str, Any]:
    model_mib = 12852.0
    return {
        "seconds": seconds,
        "cpu_seconds": seconds / 2,
        "achieved": 0.2004,
        "model_bf16_mib": model_mib,
        "peak_rss_mib": peak_mib,
        "peak_rss_over_model": peak_mib / model_mib,
        "load_average_1min": 2.5,
        "load_average_1min_end": 3.0,
        "threads": 2,
    }


def put(store: Store, shape: str, samples: int, seconds: float, peak_mib: float) -> str:
    config = {
        "shape": shape,
        "prune": {"ratio": 0.2, "calib_samples": samples, "calib_seq_len": 128},
        "device": "cpu",
    }
    return store.put("prune_scale", config, scale_result(seconds, peak_mib)).key


def test_an_empty_store_reads_not_run_yet(tmp_path: Path) -> None:
    assert results.NOT_RUN in results.scale_frame(str(tmp_path)).to_string()


def test_each_record_is_a_row_with_its_numbers(tmp_path: Path) -> None:
    store = Store(tmp_path)
    full = put(store, "llama-7b", 32, 3600.0, 3072.0)
    quick = put(store, "llama-7b", 4, 900.0, 2560.0)
    frame = results.scale_frame(str(tmp_path))
    assert list(frame.index) == [("llama-7b", "4x128"), ("llama-7b", "32x128")]
    row = frame.loc[("llama-7b", "32x128")]
    assert (row["pruning (min)"], row["CPU (min)"], row["peak RSS (GiB)"]) == (
        "60.0",
        "30.0",
        "3.00",
    )
    assert row["load (1 min)"] == "2.5 to 3.0"
    assert row["peak RSS / model"] == f"{3072 / 12852:.2f}"
    assert list(frame["record"]) == [quick, full]
    assert "peak GPU (GiB)" not in frame


def test_the_book_shows_every_committed_record() -> None:
    keys = {p.stem for p in (ROOT / "results" / "prune_scale").glob("*.json")}
    shown = results.scale_frame(str(ROOT / "results"))
    assert set(shown.get("record", [])) == keys


def test_a_gpu_run_adds_its_device_peak_and_cpu_rows_say_so(tmp_path: Path) -> None:
    store = Store(tmp_path)
    put(store, "llama-7b", 32, 3600.0, 3072.0)
    config = {
        "shape": "llama-7b",
        "prune": {"ratio": 0.2, "calib_samples": 32, "calib_seq_len": 128},
        "device": "cuda",
    }
    result = scale_result(30.0, 2048.0) | {"peak_gpu_mib": 1843.2}
    store.put("prune_scale", config, result)
    frame = results.scale_frame(str(tmp_path)).reset_index().set_index("device")
    assert frame.loc["cuda", "peak GPU (GiB)"] == "1.80"
    assert frame.loc["cuda", "pruning (min)"] == "0.5"
    assert frame.loc["cpu", "peak GPU (GiB)"] == "CPU run"
