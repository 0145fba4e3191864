"""Zero-shot accuracy on the 7 commonsense tasks through lm-eval around an in-memory model.

lm-eval owns the tasks, prompts, metrics and aggregation; the model it drives is `FastLM`
(`backend="fast"`, the default: lm-eval's `HFLM` with a scorer that shares each context across
its choices, see `slimllm.measure.fast_lm`) or lm-eval's own `HFLM` (`backend="hflm"`). Both
give the same per-item log-likelihoods up to float rounding: within 1e-4 in float32; in bfloat16
the rounding is coarse enough to flip a few near-tied items, as HFLM's own batch size does
(`benchmarks/zeroshot_speed.py` measures both).

The lineage (LLM-Pruner, FLAP, SlimLLM) reports acc for BoolQ, PIQA, WinoGrande and ARC-e and
acc_norm for HellaSwag, ARC-c and OBQA, and the mean of those seven. Both metrics, their stderr
and every item's correctness are kept, so two models can be compared item by item.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from accelerate import Accelerator
from lm_eval.models.huggingface import HFLM
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from slimllm.measure import parallel
from slimllm.measure.fast_lm import BATCH_TOKENS, ROW_TOKENS, FastLM
from slimllm.measure.lm_eval_tasks import (
    HUB_SIZES,
    REPORTED_METRIC,
    SEVEN_TASKS,
    check_limit,
    check_tasks,
    subset_indices,
    write_task_yamls,
)
from slimllm.util.provenance import model_record, versions

BACKENDS = ("fast", "hflm")


DEFAULT_BACKEND = "fast"


#: How each backend lays requests out for the model, for the record.
LAYOUT = {
    "fast": (
        f"prefix trees (each context once, with its choices) in rows of <= {ROW_TOKENS} "
        f"positions, rows right-padded to the longest of a batch of <= {BATCH_TOKENS} positions; "
        "output head and log-softmax on the scored positions only"
    ),
    "hflm": "right, to the longest request of a batch (lm-eval sorts by length)",
}


#: HFLM's requests per forward (the fast backend uses it only for rolling windows and
#: generation). Not yet measured: `benchmarks/zeroshot_table.py --probe 4,16,32` times
#: the choices; the full-vocabulary log-softmax lm-eval keeps per batch grows with the size.
DEFAULT_BATCH_SIZE = 16


#: lm-eval sums continuation log-probs; a bfloat16 sum loses digits, so the softmax is float32.
SOFTMAX_DTYPE = "float32"


@dataclass
class ZeroShotResult:
    """Per-task scores (reported metric, acc, acc_norm, stderr), the mean, and what was run."""

    #: task -> {"metric", "value", "stderr", "acc", "acc_stderr", "acc_norm", "acc_norm_stderr",
    #: "n", "size"}
    tasks: dict[str, dict[str, Any]]
    #: Mean of the reported metric over the tasks run (the 7-task mean when all seven ran).
    mean: float
    #: task -> indices of the evaluated items within the full split (same for every model).
    items: dict[str, list[int]]
    #: task -> per-item 0/1 of acc and acc_norm, in `items` order.
    correct: dict[str, dict[str, list[int]]]
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)
    #: task -> per item (in `items` order) -> per choice [log-likelihood, greedy 0/1], as the
    #: backend answered lm-eval; only with `zeroshot(..., keep_loglikelihoods=True)`.
    loglikelihoods: dict[str, list[list[list[float]]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        lines = [f"{'task':>14} {'metric':>8} {'value':>7} {'stderr':>7} {'items':>6}"]
        for name, t in self.tasks.items():
            lines.append(
                f"{name:>14} {t['metric']:>8} {t['value']:>7.4f} {t['stderr']:>7.4f} {t['n']:>6}"
            )
        lines.append(f"{'mean':>14} {'':>8} {self.mean:>7.4f}")
        return "\n".join(lines)


def _quiet_lm_eval() -> None:
    # lm-eval logs every task config at INFO and warns that an in-memory model ignores its
    # loading arguments (which is intended here).
    for name in ("lm_eval", "lm-eval"):
        logging.getLogger(name).setLevel(logging.ERROR)


def check_backend(backend: str) -> None:
    """Refuse a backend name other than those in `BACKENDS`."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")


def make_lm(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int = DEFAULT_BATCH_SIZE,
    softmax_dtype: str = SOFTMAX_DTYPE,
    backend: str = DEFAULT_BACKEND,
) -> HFLM:
    """The lm-eval model around `model` as it is (its dtype and device are the caller's):
    `FastLM` for `backend="fast"`, lm-eval's own `HFLM` for `"hflm"`.

    Under several processes (`slimllm.measure.parallel`) it carries their rank, world size and
    an `Accelerator`, which lm-eval's data-parallel path uses to split the documents and gather
    the metrics (HFLM sets them up itself only for a model it loads by name, on GPUs).
    """
    check_backend(backend)
    _quiet_lm_eval()
    device = next(model.parameters()).device
    args: dict[str, Any] = {
        "tokenizer": tokenizer,
        "batch_size": batch_size,
        "device": str(device),
        "softmax_dtype": softmax_dtype,
    }
    lm = FastLM(model, **args) if backend == "fast" else HFLM(pretrained=model, **args)
    rank, world = parallel.rank_and_world()
    if world > 1:
        lm.accelerator = Accelerator(cpu=device.type == "cpu")
        lm._rank, lm._world_size = rank, world
    return lm


def _metric(task_result: dict[str, Any], name: str) -> tuple[float, float]:
    # lm-eval's hub BoolQ and WinoGrande define acc only; the local YAMLs add acc_norm.
    value = task_result.get(f"{name},none", float("nan"))
    stderr = task_result.get(f"{name}_stderr,none")
    return float(value), float(stderr) if isinstance(stderr, (int, float)) else float("nan")


def zeroshot(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    tasks: list[str] | tuple[str, ...] = SEVEN_TASKS,
    limit: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    softmax_dtype: str = SOFTMAX_DTYPE,
    hub: bool = False,
    backend: str = DEFAULT_BACKEND,
    keep_loglikelihoods: bool = False,
) -> ZeroShotResult:
    """0-shot accuracy of `model` on `tasks` through lm-eval.

    `limit`: a seeded subset of `limit` items per task (`seed`; the whole task where it is
    smaller), the same items for every model, listed in the result. Data come from the local
    data folder (`data_dir`, else $SLIMLLM_DATA_DIR, else ../shared/data); `hub=True` uses
    lm-eval's own hub tasks instead (network needed). `backend`: "fast" (`FastLM`) or "hflm"
    (lm-eval's `HFLM`); the result's settings say which. `keep_loglikelihoods`: keep every
    request's answer too, to compare backends or models below the verdicts.
    """
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    names = check_tasks(tasks)
    check_limit(limit)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    lm = make_lm(model, tokenizer, batch_size, softmax_dtype, backend)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="slimllm-tasks-") as folder:
        if hub:
            lm_names = {n: n for n in names}
            items = {n: subset_indices(HUB_SIZES[n], limit, seed, n) for n in names}
            sources = {n: "lm-eval hub task" for n in names}
            samples = {n: items[n] for n in names if len(items[n]) < HUB_SIZES[n]} or None
            manager = TaskManager()
        else:
            files = write_task_yamls(folder, names, data_dir, limit, seed)
            lm_names, items, sources, samples = files.names, files.items, files.sources, None
            manager = TaskManager(include_path=folder, include_defaults=False)
        out = simple_evaluate(
            model=lm,
            tasks=list(lm_names.values()),
            num_fewshot=0,
            task_manager=manager,
            samples=samples,
            log_samples=True,
            # Any positive count: the stderr of a mean is the closed form, not a bootstrap.
            bootstrap_iters=1000,
            random_seed=seed,
            numpy_random_seed=seed,
            torch_random_seed=seed,
            fewshot_random_seed=seed,
        )
        # lm-eval gathers the scores on process 0 only; every process returns the result.
        out = parallel.from_first(
            None if out is None else {k: out[k] for k in ("results", "samples")}
        )
    seconds = time.perf_counter() - start
    scores: dict[str, dict[str, Any]] = {}
    correct: dict[str, dict[str, list[int]]] = {}
    answers: dict[str, list[list[list[float]]]] = {}
    for name in names:
        res = out["results"][lm_names[name]]
        acc, acc_se = _metric(res, "acc")
        norm, norm_se = _metric(res, "acc_norm")
        reported = REPORTED_METRIC[name]
        value, stderr = (acc, acc_se) if reported == "acc" else (norm, norm_se)
        docs = sorted(out["samples"][lm_names[name]], key=lambda s: s["doc_id"])
        if len(docs) != len(items[name]):
            raise RuntimeError(
                f"lm-eval scored {len(docs)} items of {name}, expected {len(items[name])}"
            )
        correct[name] = {m: [int(d[m]) for d in docs] for m in ("acc", "acc_norm") if m in docs[0]}
        if keep_loglikelihoods:
            # One response per request (no repeats), [(log-likelihood, greedy)]; under several
            # processes lm-eval may score a process's last request again to even the batches.
            answers[name] = [[[r[0][0], int(r[0][1])] for r in d["resps"]] for d in docs]
        scores[name] = {
            "metric": reported,
            "value": value,
            "stderr": stderr,
            "acc": acc,
            "acc_stderr": acc_se,
            "acc_norm": norm,
            "acc_norm_stderr": norm_se,
            "n": len(docs),
            "size": HUB_SIZES[name] if hub else files.sizes[name],
            "source": sources[name],
        }
    param = next(model.parameters())
    settings = {
        "backend": backend,
        "batch_size": batch_size,
        "softmax_dtype": softmax_dtype,
        "padding": LAYOUT[backend],
        "dtype": str(param.dtype).removeprefix("torch."),
        "device": str(param.device),
        "torch_threads": torch.get_num_threads(),
        "add_bos_token": lm.add_bos_token,
        "max_length": lm.max_length,
    }
    if isinstance(lm, FastLM):
        settings |= {"row_tokens": lm.row_tokens, "batch_tokens": lm.batch_tokens}
    return ZeroShotResult(
        tasks=scores,
        mean=sum(s["value"] for s in scores.values()) / len(scores),
        items=items,
        correct=correct,
        seconds=seconds,
        settings=settings,
        record={
            "model": model_record(model),
            "num_fewshot": 0,
            "limit": limit,
            "seed": seed,
            "hub": hub,
            "versions": versions(),
        },
        loglikelihoods=answers,
    )
