"""Which function measures each kind of record, so any record can be measured again.

A runner takes a record's `config` and `settings` and returns its `result`; `slimllm rerun`
looks the kind up here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slimllm.eval_speed import run_eval_speed
from slimllm.evaluate import run_perplexity
from slimllm.latency import run_latency
from slimllm.probes import run_nb_channels, run_nb_similarity
from slimllm.prune_cost import run_prune_cost
from slimllm.recipes import run_prune
from slimllm.tune import run_tune
from slimllm.zeroshot import run_zeroshot

Runner = Callable[[dict[str, Any], dict[str, Any]], Any]

RUNNERS: dict[str, Runner] = {
    "perplexity": run_perplexity,
    "prune": run_prune,
    "eval_speed": run_eval_speed,
    "zeroshot": run_zeroshot,
    "prune_cost": run_prune_cost,
    "latency": run_latency,
    "tune": run_tune,
    "nb_channels": run_nb_channels,
    "nb_similarity": run_nb_similarity,
}


def runner_for(kind: str) -> Runner:
    if kind not in RUNNERS:
        raise ValueError(
            f"records of kind {kind!r} cannot be re-run; re-runnable kinds: {sorted(RUNNERS)}"
        )
    return RUNNERS[kind]
