"""Cells of the benchmark tables, shared by table1.py, ablations.py and other_models.py.

A cell is one store record, keyed exactly as `slimllm eval` and `slimllm rerun` key it: a model
recipe's full-set WikiText-2 or PTB perplexity ("perplexity", lineage-128) or its 7-task
zero-shot accuracy on the seeded 500-item subset ("zeroshot"). Every table measures in
bfloat16, fixed rather than `auto`, so a recipe that appears in two tables is one record and
records made on different machines are one table.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch

from slimllm.experiments import recipes, tables
from slimllm.experiments.runners import (
    perplexity_config,
    run_perplexity,
    run_zeroshot,
    zeroshot_config,
)
from slimllm.experiments.store import Store, config_key
from slimllm.measure.lm_eval_tasks import SEVEN_TASKS
from slimllm.measure.zeroshot import DEFAULT_BATCH_SIZE

DTYPE = "bfloat16"
LIMIT = 500
SEEDS = (42, 43, 44)
TUNE_PRESET = "cpu"
PPL_COLUMNS = tables.PPL_COLUMNS
#: A cell's name ("wikitext2", "ptb", "zeroshot") -> the --measure group that includes it.
GROUPS = {**{ds: "ppl" for ds in PPL_COLUMNS}, "zeroshot": "zeroshot"}


def cell_parser(doc: str | None, model: str) -> argparse.ArgumentParser:
    """The options every resumable table script shares (the script adds its own rows' options)."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=model)
    parser.add_argument("--measure", default="ppl,zeroshot", help="ppl, zeroshot or both")
    parser.add_argument(
        "--only", "--rows", default="", help="comma-separated row labels (see --dry-run)"
    )
    parser.add_argument("--part", default="1/1", help="K/N: the K-th of N shares of the models")
    parser.add_argument("--max-windows", type=int, default=None, help="default: full sets")
    parser.add_argument("--limit", type=int, default=LIMIT, help="zero-shot items per task")
    parser.add_argument("--dry-run", action="store_true", help="list the cells, write nothing")
    parser.add_argument("--assemble", action="store_true", help="measure nothing, write tables")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    return parser


class Clock:
    """Progress lines prefixed with the time since the script started."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self, text: str) -> None:
        seconds = int(time.monotonic() - self.start)
        print(f"[{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}] {text}", flush=True)


def cell_configs(
    recipe: dict[str, Any], max_windows: int | None, limit: int | None
) -> dict[str, dict[str, Any]]:
    """The store configuration of each cell of a recipe: its perplexities and its zero-shot."""
    found: dict[str, dict[str, Any]] = {
        ds: perplexity_config(recipe, ds, dtype=DTYPE, max_windows=max_windows)
        for ds in PPL_COLUMNS
    }
    found["zeroshot"] = zeroshot_config(recipe, list(SEVEN_TASKS), limit, 0, DTYPE)
    return found


def kind_of(name: str) -> str:
    return "zeroshot" if name == "zeroshot" else "perplexity"


def measure_groups(parser: argparse.ArgumentParser, text: str) -> set[str]:
    """The --measure option: "ppl", "zeroshot" or both, comma-separated."""
    what = {w.strip() for w in text.split(",") if w.strip()}
    if not what or not what <= {"ppl", "zeroshot"}:
        parser.error(f"--measure takes ppl and/or zeroshot, got {text!r}")
    return what


def only_labels(parser: argparse.ArgumentParser, text: str, labels: Iterable[str]) -> set[str]:
    """The --only option: comma-separated row labels, each of which must exist."""
    only = {s.strip() for s in text.split(",") if s.strip()}
    unknown = only - set(labels)
    if unknown:
        parser.error(f"--only: no rows {sorted(unknown)}; rows: {sorted(labels)}")
    return only


def parse_part(parser: argparse.ArgumentParser, text: str) -> tuple[int, int]:
    """The --part option, K/N with 1 <= K <= N: this process's share of N."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        parser.error(f"--part takes K/N, e.g. 1/2, got {text!r}")
    if not 1 <= k <= n:
        parser.error(f"--part K/N needs 1 <= K <= N, got {text!r}")
    return k, n


def in_part(recipe: dict[str, Any], k: int, n: int) -> bool:
    """Whether a row's recipe is share K's of N: by the key of the pruned model it starts from,
    not by position, so processes started at different times split alike whatever is stored
    already, and a tuned row goes with its untuned row (its pruning runs in one process)."""
    return int(config_key("recipe", recipes.untuned(recipe)), 16) % n == k - 1


def measure(
    store: Store,
    label: str,
    configs: dict[str, dict[str, Any]],
    what: set[str],
    settings: dict[str, Any],
    log: Callable[[str], None] = print,
) -> None:
    """Measure the cells of one row that the store lacks (the groups in `what`)."""
    for name, config in configs.items():
        if GROUPS[name] not in what:
            continue
        kind = kind_of(name)
        runner = run_zeroshot if kind == "zeroshot" else run_perplexity
        if store.get(kind, config) is None:
            log(f"{label} {name}: measuring")
        record = store.run(kind, config, lambda c=config, r=runner: r(c, settings), settings)
        state = "stored" if record.loaded else f"measured in {record.seconds:.0f} s"
        log(f"{label} {name}: {state} ({record.path})")
        keep_prune_record(store, config["model"])


def keep_prune_record(store: Store, recipe: dict[str, Any]) -> None:
    """Copy the pruning record of a recipe built just now from the user's store (where
    `recipes.build` writes it) into `store`, so the book can show the achieved ratio."""
    if "prune" not in recipe:
        return
    config = {"model": recipes.untuned(recipe)}
    if store.get("prune", config) is not None:
        return
    found = Store().get("prune", config)
    if found is not None:
        store.put("prune", config, found.result, found.settings, found.seconds, found.environment)


def achieved(store: Store, recipe: dict[str, Any]) -> float | None:
    """The parameter ratio the recipe's pruning reached, from its stored "prune" record."""
    if "prune" not in recipe:
        return None
    found = store.get("prune", {"model": recipes.untuned(recipe)})
    return None if found is None else found.result["achieved"]


def ppl_entry(store: Store, config: dict[str, Any]) -> dict[str, Any] | None:
    """A perplexity cell as the tables hold it (None where not measured yet)."""
    rec = store.get("perplexity", config)
    if rec is None:
        return None
    res = rec.result
    return {
        "ppl": res["ppl"],
        "ci": [res["ci_low"], res["ci_high"]],
        "record": rec.key,
        "seconds": rec.seconds,
    }


def zeroshot_entry(store: Store, config: dict[str, Any]) -> dict[str, Any] | None:
    """A zero-shot cell as the tables hold it (None where not measured yet)."""
    rec = store.get("zeroshot", config)
    if rec is None:
        return None
    res = rec.result
    return {
        "tasks": {
            t: {k: res["tasks"][t][k] for k in ("value", "stderr", "metric")} for t in SEVEN_TASKS
        },
        "mean": res["mean"],
        "record": rec.key,
        "seconds": rec.seconds,
    }


def entries(
    store: Store, configs: dict[str, dict[str, Any]], label: str, missing: list[str]
) -> dict[str, dict[str, Any] | None]:
    """Every cell of one row read from the store; labels of absent cells appended to `missing`."""
    out: dict[str, dict[str, Any] | None] = {}
    for name, config in configs.items():
        out[name] = (zeroshot_entry if name == "zeroshot" else ppl_entry)(store, config)
        if out[name] is None:
            missing.append(f"{label} {'zero-shot' if name == 'zeroshot' else name}")
    return out


def spread(values: list[float]) -> dict[str, Any] | None:
    """Mean, sample standard deviation, min and max over seeds (None below two seeds)."""
    if len(values) < 2:
        return None
    return {
        "n": len(values),
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values),
        "min": min(values),
        "max": max(values),
    }


def status(store: Store, configs: dict[str, dict[str, Any]], what: set[str]) -> str:
    """One line for --dry-run: each cell in `what`, "+" where a record exists, "-" where not."""
    return " ".join(
        f"{name}{'+' if store.get(kind_of(name), config) is not None else '-'}"
        for name, config in configs.items()
        if GROUPS[name] in what
    )
