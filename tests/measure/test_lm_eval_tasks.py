"""The task YAMLs written for lm-eval: each local task's gold and choices, seeded subsets, and a
missing data file named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from slimllm.data.sources import TASKS, DataError
from slimllm.measure.lm_eval_tasks import SEVEN_TASKS, TASK_PREFIX, subset_indices, write_task_yamls


def _expected_target(task: str, rec: dict[str, Any]) -> int:
    """Gold index straight from the raw record, as each PROVENANCE.md describes it."""
    if task == "boolq":
        return int(rec["answer"])
    if task == "winogrande":
        return int(rec["answer"]) - 1
    if task in ("piqa", "hellaswag"):
        return int(rec["label"])
    return rec["choices"]["label"].index(rec["answerKey"].strip())


def _expected_choices(task: str, rec: dict[str, Any]) -> int:
    if task == "boolq":
        return 2
    if task in ("piqa", "winogrande"):
        return 2
    if task == "hellaswag":
        return len(rec["endings"])
    return len(rec["choices"]["text"])


def test_yamls_map_every_local_task(tmp_path: Path, shared_data_dir: Path) -> None:
    """lm-eval reads each generated task with the gold answer and choices of the raw file."""
    from lm_eval.tasks import TaskManager

    files = write_task_yamls(tmp_path, SEVEN_TASKS, shared_data_dir, limit=6, seed=3)
    manager = TaskManager(include_path=str(tmp_path), include_defaults=False)
    loaded = manager.load(list(files.names.values()))["tasks"]
    for name in SEVEN_TASKS:
        task = loaded[TASK_PREFIX + name]
        docs = list(task.eval_docs)
        raw = [
            json.loads(line)
            for line in (shared_data_dir / TASKS[name].path).read_text().splitlines()
            if line.strip()
        ]
        assert len(docs) == 6 == len(files.items[name])
        for doc, index in zip(docs, files.items[name], strict=True):
            rec = raw[index]
            choices = task.doc_to_choice(doc)
            if name == "winogrande":  # partial scoring: the gold is the context index
                assert task.doc_to_text(doc) == _expected_target(name, rec)
            else:
                assert task.doc_to_target(doc) == _expected_target(name, rec), name
            assert len(choices) == _expected_choices(name, rec), name
        if name == "hellaswag":  # the local copy is already preprocessed: used as it is
            assert task.doc_to_choice(docs[0]) == raw[files.items[name][0]]["endings"]


def test_limit_picks_the_same_items(tmp_path: Path, shared_data_dir: Path) -> None:
    a = write_task_yamls(tmp_path / "a", ["boolq", "openbookqa"], shared_data_dir, 20, seed=1)
    b = write_task_yamls(tmp_path / "b", ["boolq", "openbookqa"], shared_data_dir, 20, seed=1)
    c = write_task_yamls(tmp_path / "c", ["boolq"], shared_data_dir, 20, seed=2)
    assert a.items == b.items and a.items["boolq"] != c.items["boolq"]
    lines = (shared_data_dir / TASKS["boolq"].path).read_text().splitlines()
    subset = (tmp_path / "a" / f"{TASK_PREFIX}boolq.items.jsonl").read_text().splitlines()
    assert subset == [lines[i] for i in a.items["boolq"]]
    assert subset_indices(500, 600, 0) == list(range(500))
    assert subset_indices(10, 4, 0, "x") == subset_indices(10, 4, 0, "x") != list(range(4))


def test_missing_data_file_is_named(tmp_path: Path, shared_data_dir: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(shared_data_dir / "piqa", data / "piqa")
    out = tmp_path / "yamls"
    with pytest.raises(DataError) as err:
        write_task_yamls(out, ["piqa", "boolq"], data)
    message = str(err.value)
    assert "\n" not in message and str(data / TASKS["boolq"].path) in message
    assert not out.exists()
