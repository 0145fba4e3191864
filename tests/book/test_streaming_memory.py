"""The cost page's table of the streaming prune's device memory: the estimate for LLaMA-7B,
-13B and Llama-2-70B beside the `prune_scale` records' measured CPU peaks."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig

from slimllm.book import results
from slimllm.experiments.store import Store
from slimllm.method.config import PruneConfig
from slimllm.method.memory import streaming_peak_bytes
from slimllm.models.reference_configs import REFERENCE_CONFIGS
from tests.helpers import ROOT

RSS = "CPU peak RSS, whole process (GiB)"


def put(store: Store, shape: str, samples: int, device: str, result: dict[str, float]) -> str:
    config = {
        "shape": shape,
        "prune": {"ratio": 0.2, "calib_samples": samples, "calib_seq_len": 128},
        "device": device,
    }
    return store.put("prune_scale", config, result).key


def estimate(name: str) -> dict[str, int]:
    config = AutoConfig.for_model(**REFERENCE_CONFIGS[name])
    return streaming_peak_bytes(config, PruneConfig(), torch.bfloat16, None)


def test_an_empty_store_shows_the_estimates_and_no_measurement(tmp_path: Path) -> None:
    frame = results.streaming_memory_frame(str(tmp_path))
    assert list(frame.index) == ["LLaMA-7B", "LLaMA-13B", "LLaMA-2-70B"]
    # The published parameter counts: 6,738,415,616 and 68,976,648,192.
    assert frame.loc["LLaMA-7B", "bf16 model (GiB)"] == f"{6738415616 * 2 / 2**30:.1f}"
    assert frame.loc["LLaMA-2-70B", "bf16 model (GiB)"] == f"{68976648192 * 2 / 2**30:.1f}"
    for label, name, _ in results.MEMORY_MODELS:
        peak = estimate(name)
        row = frame.loc[label]
        assert row["device peak, estimate (GiB)"] == f"{peak['total'] / 2**30:.2f}"
        assert row["one layer (GiB)"] == f"{peak['layer_weights'] / 2**30:.2f}"
        fits = peak["total"] <= 24 * 2**30
        assert row["fits 24 GiB"] == ("yes" if fits else "no")
        assert row["GPU peak, measured (GiB)"] == "no GPU run"
    assert list(frame[RSS]) == [results.NOT_RUN, results.NOT_RUN, "no such benchmark shape"]
    lines = results.streaming_memory_lines(str(tmp_path)).data
    assert "No GPU was available to this project's runs" in lines
    assert "The largest terms at LLaMA-7B (GiB): `regression_fold`" in lines


def test_the_paper_calibration_records_fill_the_measured_columns(tmp_path: Path) -> None:
    store = Store(tmp_path)
    cpu = put(store, "llama-7b", 32, "cpu", {"peak_rss_mib": 4608.0})
    put(store, "llama-7b", 8, "cpu", {"peak_rss_mib": 4000.0})
    gpu = put(store, "llama-13b", 32, "cuda", {"peak_rss_mib": 9000.0, "peak_gpu_mib": 6144.0})
    frame = results.streaming_memory_frame(str(tmp_path))
    assert frame.loc["LLaMA-7B", RSS] == "4.50"
    assert frame.loc["LLaMA-7B", "record"] == cpu
    assert frame.loc["LLaMA-13B", RSS] == results.NOT_RUN
    assert frame.loc["LLaMA-13B", "GPU peak, measured (GiB)"] == "6.00"
    assert frame.loc["LLaMA-13B", "record"] == gpu
    lines = results.streaming_memory_lines(str(tmp_path)).data
    assert "torch.cuda.max_memory_allocated" in lines
    assert "No GPU was available" not in lines
    tensors = estimate("huggyllama/llama-13b")["total"] - results.CUDA_CONTEXT_BYTES
    assert f"LLaMA-13B {tensors / 2**30:.2f} estimated against 6.00 measured" in lines
    assert "LLaMA-7B" not in lines.split("without the assumed CUDA context")[1]


def test_the_book_shows_the_newest_committed_cpu_record_at_the_paper_calibration() -> None:
    frame = results.streaming_memory_frame(str(ROOT / "results"))
    records = list(Store(ROOT / "results").records("prune_scale"))
    for label, _, shape in results.MEMORY_MODELS[:2]:
        found = [
            r
            for r in records
            if (r.config["shape"], r.config["device"]) == (shape, "cpu")
            and (r.config["prune"]["calib_samples"], r.config["prune"]["calib_seq_len"])
            == (32, 128)
        ]
        shown = frame.loc[label, RSS]
        if not found:
            assert shown == results.NOT_RUN
            continue
        newest = max(found, key=lambda r: r.environment["measured_at"])
        assert shown == f"{newest.result['peak_rss_mib'] / 1024:.2f}"
        assert newest.key in frame.loc[label, "record"].split(", ")


def scale_result(seconds: float, params_after: int, gpu_mib: float | None = None) -> dict:
    result = {"seconds": seconds, "params_after": params_after, "achieved": 0.2}
    result["peak_rss_mib"] = 3000.0
    if gpu_mib is not None:
        result |= {"peak_gpu_mib": gpu_mib, "peak_gpu_reserved_mib": 2 * gpu_mib}
    return result


def test_the_gpu_runs_are_set_beside_the_time_model_and_the_cpu_run(tmp_path: Path) -> None:
    assert "No GPU has run the streaming prune" in results.time_model_lines(str(tmp_path)).data
    store = Store(tmp_path)
    put(store, "llama-7b", 32, "cpu", scale_result(2040.0, 5_000_000))
    gpu = put(store, "llama-7b", 32, "cuda", scale_result(31.0, 5_000_000, 1024.0))
    lines = results.time_model_lines(str(tmp_path)).data
    assert "LLaMA-7B's shape took **31 s**" in lines and gpu in lines
    assert "against 34 min on this CPU" in lines
    assert "1.00 GiB allocated (2.00 GiB reserved)" in lines
    assert "kept the CPU run's parameter count exactly" in lines
    assert "LLaMA-13B" not in lines
    # The model's seconds for one prune come from budget, at its stated utilisation.
    values = {**results.presets.resolve("paper"), "model": "huggyllama/llama-7b"}
    tflop = results.budget.estimate_work(
        results.budget.Work(prunes=1), values | {"dtype": "bfloat16"}
    )["tflop"]
    seconds = tflop * 1e12 / (results.budget.PEAK_FLOPS[torch.bfloat16] * 0.4)
    assert f"the time model gives {seconds:.1f} s" in lines
    other = Store(tmp_path / "other")
    put(other, "llama-7b", 32, "cpu", scale_result(2040.0, 5_000_000))
    put(other, "llama-7b", 32, "cuda", scale_result(31.0, 5_015_360, 1024.0))
    lines = results.time_model_lines(str(tmp_path / "other")).data
    assert "it kept 15,360 parameters more than the CPU run (5,000,000)" in lines


def put_eval(store: Store, dtype: str, seconds: float, gpu: str | None) -> str:
    shape = {"vocab_size": 32000, "hidden_size": 4096, "num_hidden_layers": 32}
    config = {
        "model": {"random_llama": shape, "seed": 0},
        "dtype": dtype,
        "device": "cuda",
        "windows": 2560,
        "batch_size": 8,
    }
    result = {"seconds": seconds, "tokens": 325_120, "params": 6_738_415_616}
    env = {"gpu": gpu, "measured_at": "2026-12-04T18:00:00+00:00"}
    return store.put("eval_scale", config, result, env=env).key


def test_the_gpu_evaluations_are_set_against_the_models_count_of_their_forwards(
    tmp_path: Path, shared_data_dir: Path
) -> None:
    lines = results.time_model_lines(str(tmp_path)).data
    assert "No GPU has timed an evaluation at this scale" in lines
    store = Store(tmp_path)
    fp16 = put_eval(store, "float16", 12.4, "NVIDIA H200")
    lines = results.time_model_lines(str(tmp_path)).data
    per_token = 2 * (6_738_415_616 - 32000 * 4096) + 2 * 32 * 128 * 4096
    rate = 325_120 * per_token / 12.4
    assert f"(record `{fp16}`) 325,120 tokens took **12.4 s** on NVIDIA H200" in lines
    assert f"{rate / 1e12:.0f} TFLOP/s by the model's count, {rate / 989e12:.0%} of its" in lines
    modelled = 325_120 * per_token / (312e12 * 0.4)
    assert f"(the model's time on its A100: {modelled:.0f} s)" in lines
    assert f"ran at {rate / 989e12:.0%} to {rate / 989e12:.0%} of their GPU's" in lines
    # A GPU without a datasheet peak here gets its rate, no share of a peak.
    put_eval(store, "bfloat16", 10.0, "Some Other GPU")
    lines = results.time_model_lines(str(tmp_path)).data
    assert "took **10.0 s** on Some Other GPU" in lines
    assert lines.count("of its dense peak") == 1
