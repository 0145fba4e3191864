"""lm-eval task YAMLs for the 7 commonsense tasks, read from the local data folder.

Each generated YAML `include`s lm-eval's own task definition (prompt, choices, target, metrics)
and overrides only where the data lives (`dataset_path: json` + `data_files`) and, where the local
copy's fields differ from the hub's, the field mapping (each task's PROVENANCE.md). A `limit`
keeps a seeded subset of items, written as a small JSONL file beside the YAMLs, so the in-process
run and `lm_eval --include_path DIR` see exactly the same items. Task names carry the
`slimllm_` prefix so they never shadow lm-eval's hub tasks of the same name.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from slimllm.data.sources import TASKS, DataError, _local_file, resolve_data_dir

SEVEN_TASKS = (
    "boolq",
    "piqa",
    "hellaswag",
    "winogrande",
    "arc_easy",
    "arc_challenge",
    "openbookqa",
)


#: The metric each task reports in the lineage's tables (LLM-Pruner, FLAP, SlimLLM).
REPORTED_METRIC = {
    "boolq": "acc",
    "piqa": "acc",
    "hellaswag": "acc_norm",
    "winogrande": "acc",
    "arc_easy": "acc",
    "arc_challenge": "acc_norm",
    "openbookqa": "acc_norm",
}


TASK_PREFIX = "slimllm_"


#: A tag on every generated task: `lm_eval --tasks slimllm_zeroshot` runs all of them.
GROUP_TAG = "slimllm_zeroshot"


#: Split sizes of the hub versions (the same splits as the local files), for `samples` subsets.
HUB_SIZES = {
    "boolq": 3270,
    "piqa": 1838,
    "hellaswag": 10042,
    "winogrande": 1267,
    "arc_easy": 2376,
    "arc_challenge": 1172,
    "openbookqa": 500,
}


@dataclass(frozen=True)
class LocalTask:
    """How one task's local file plugs into lm-eval's definition."""

    include: str  # lm-eval's YAML, relative to lm_eval/tasks/
    split: str  # the split lm-eval evaluates ("validation" or "test")
    overrides: dict[str, Any] = field(default_factory=dict)


LOCAL_TASKS: dict[str, LocalTask] = {
    # Google's release format: `answer` is a bool where SuperGLUE has an int `label`.
    "boolq": LocalTask(
        "super_glue/boolq/default.yaml", "validation", {"doc_to_target": "{{answer|int}}"}
    ),
    "piqa": LocalTask("piqa/piqa.yaml", "validation"),
    # Already preprocessed (klosax's text form): no process_docs, `endings` are the choices.
    "hellaswag": LocalTask(
        "hellaswag/hellaswag.yaml",
        "validation",
        {"process_docs": None, "doc_to_choice": "{{endings}}", "doc_to_target": "{{label}}"},
    ),
    "winogrande": LocalTask("winogrande/default.yaml", "validation"),
    "arc_easy": LocalTask("arc/arc_easy.yaml", "test"),
    "arc_challenge": LocalTask("arc/arc_challenge.yaml", "test"),
    "openbookqa": LocalTask("openbookqa/openbookqa.yaml", "test"),
}


@dataclass
class TaskFiles:
    """What `write_task_yamls` wrote: lm-eval task names and the items each one holds."""

    folder: Path
    #: slimllm task name -> lm-eval task name (e.g. "boolq" -> "slimllm_boolq").
    names: dict[str, str]
    #: slimllm task name -> indices (0-based lines of the full split) evaluated, in order.
    items: dict[str, list[int]]
    #: slimllm task name -> size of the full split.
    sizes: dict[str, int]
    #: slimllm task name -> the full split's data file.
    sources: dict[str, str]


def check_tasks(tasks: list[str] | tuple[str, ...]) -> list[str]:
    names = list(tasks)
    unknown = [t for t in names if t not in LOCAL_TASKS]
    if unknown or not names:
        raise ValueError(
            f"unknown zero-shot task(s) {unknown or names}; choose from {', '.join(SEVEN_TASKS)}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"zero-shot tasks listed twice: {names}")
    return names


def check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be None or an integer >= 1, got {limit!r}")


def subset_indices(size: int, limit: int | None, seed: int, task: str = "") -> list[int]:
    """`limit` of `size` item indices drawn with `seed`, sorted; all of them when it covers all.

    Depends only on (size, limit, seed, task), so every model is scored on the same items; the
    task name in the seed keeps same-sized tasks from sharing positions.
    """
    if limit is None or limit >= size:
        return list(range(size))
    return sorted(random.Random(f"{task}:{seed}").sample(range(size), limit))


def lm_eval_tasks_dir() -> Path:
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).resolve().parent


def task_config(
    name: str, data_file: Path, metrics: tuple[str, ...] = ("acc", "acc_norm")
) -> dict[str, Any]:
    """The YAML content of one local task: lm-eval's definition with the data pointed at a file."""
    spec = LOCAL_TASKS[name]
    include = lm_eval_tasks_dir() / spec.include
    if not include.is_file():
        raise DataError(f"task {name!r}: lm-eval 0.4.x has no {str(include)!r}")
    splits = {s: None for s in ("training_split", "validation_split", "test_split")}
    splits[f"{spec.split}_split"] = spec.split
    return {
        "include": str(include),
        "task": TASK_PREFIX + name,
        "tag": [GROUP_TAG],
        "dataset_path": "json",
        "dataset_name": None,
        "dataset_kwargs": {"data_files": {spec.split: str(data_file)}},
        **splits,
        "fewshot_split": None,
        **spec.overrides,
        # Both metrics for every task (BoolQ and WinoGrande define acc only); the reported one
        # per task is REPORTED_METRIC.
        "metric_list": [
            {"metric": m, "aggregation": "mean", "higher_is_better": True} for m in metrics
        ],
    }


def _lines(file: Path) -> list[str]:
    return [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_task_yamls(
    folder: str | os.PathLike[str],
    tasks: list[str] | tuple[str, ...] = SEVEN_TASKS,
    data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    seed: int = 0,
) -> TaskFiles:
    """Write one YAML per task (and, with `limit`, its subset JSONL) into `folder`.

    Every data file is checked before anything is written, so a missing one fails in one line
    naming it and leaves `folder` untouched.
    """
    names = check_tasks(tasks)
    check_limit(limit)
    root = resolve_data_dir(data_dir)
    if root is None:
        raise DataError(
            "no local data folder for the zero-shot tasks; set $SLIMLLM_DATA_DIR or --data-dir "
            "to a folder laid out like shared/data"
        )
    files = {name: _local_file(root, TASKS[name].path, name) for name in names}
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = TaskFiles(out, {}, {}, {}, {})
    for name in names:
        source = files[name].resolve()
        lines = _lines(source)
        items = subset_indices(len(lines), limit, seed, name)
        data_file = source
        if len(items) < len(lines):
            data_file = out / f"{TASK_PREFIX}{name}.items.jsonl"
            _write_text(data_file, "".join(lines[i] + "\n" for i in items))
        config = task_config(name, data_file)
        _write_text(out / f"{TASK_PREFIX}{name}.yaml", yaml.safe_dump(config, sort_keys=False))
        written.names[name] = TASK_PREFIX + name
        written.items[name] = items
        written.sizes[name] = len(lines)
        written.sources[name] = str(source)
    return written


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
