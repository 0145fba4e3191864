"""How fast `perplexity` runs against a bare forward of the same model, per dtype and batch size.

The bare forward is `model(input_ids)` (logits over the whole vocabulary) on the same windows:
the least any perplexity implementation must do. `perplexity` also forms the float32
log-softmax and the per-window means, so its tokens per second divided by the bare forward's
says how much the bookkeeping costs.
Both are timed in the same process, interleaved, so machine noise affects both alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from slimllm.data import load_text_rows
from slimllm.evaluate import get_protocol, make_windows, window_nll
from slimllm.recipes import build
from slimllm.store import cpu_info


def first_windows(
    tokenizer: Any, dataset: str, n: int, protocol: str = "lineage-128"
) -> torch.Tensor:
    """The first `n` windows of `dataset` as `perplexity` cuts them (BOS at the start)."""
    proto = get_protocol(protocol)
    rows, _ = load_text_rows(dataset)
    ids = tokenizer(proto.joiner.join(rows), add_special_tokens=False, return_tensors="pt")
    return make_windows(ids.input_ids[0], proto.seq_len, tokenizer.bos_token_id, False)[:n]


@torch.no_grad()
def bare_forward(model: Any, windows: torch.Tensor, batch_size: int) -> None:
    for start in range(0, windows.size(0), batch_size):
        model(input_ids=windows[start : start + batch_size], use_cache=False)


def median_seconds(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Time each function `repeats` times, interleaved (a, b, a, b, ...) after one warm-up each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def run_eval_speed(config: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Tokens per second of the bare forward and of `perplexity`'s scoring, per dtype, and the
    scoring's speed per batch size in `config["sweep_dtype"]`."""
    n, repeats, batch = config["windows"], config["repeats"], config["batch_size"]
    out: dict[str, Any] = {"cpu": cpu_info(), "threads": torch.get_num_threads(), "dtypes": {}}
    windows: torch.Tensor | None = None
    for dtype in config["dtypes"]:
        model, tokenizer = build(config["model"], dtype=dtype)
        if windows is None:
            windows = first_windows(tokenizer, config["dataset"], n)
        tokens = windows.numel()
        times = median_seconds(
            {
                "bare_forward": lambda m=model, w=windows: bare_forward(m, w, batch),
                "perplexity": lambda m=model, w=windows: window_nll(m, w, batch, progress=False),
            },
            repeats,
        )
        entry = {name: _speed(t, tokens) for name, t in times.items()}
        entry["perplexity_over_bare"] = (
            entry["perplexity"]["tokens_per_s"] / entry["bare_forward"]["tokens_per_s"]
        )
        if dtype == config["sweep_dtype"]:
            sweep = median_seconds(
                {
                    str(bs): lambda m=model, w=windows, b=bs: window_nll(m, w, b, progress=False)
                    for bs in config["batch_sizes"]
                },
                repeats,
            )
            entry["batch_sweep"] = {bs: _speed(t, tokens) for bs, t in sweep.items()}
        out["dtypes"][dtype] = entry
        del model
    out["tokens"] = int(windows.numel()) if windows is not None else 0
    return out


def _speed(times: list[float], tokens: int) -> dict[str, Any]:
    median = statistics.median(times)
    return {
        "seconds": times,
        "median_s": median,
        "tokens_per_s": tokens / median,
        "ms_per_token": 1000 * median / tokens,
    }
