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

from slimllm.data.texts import load_text_rows
from slimllm.measure.perplexity import get_protocol, make_windows


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


def _speed(times: list[float], tokens: int) -> dict[str, Any]:
    median = statistics.median(times)
    return {
        "seconds": times,
        "median_s": median,
        "tokens_per_s": tokens / median,
        "ms_per_token": 1000 * median / tokens,
    }
