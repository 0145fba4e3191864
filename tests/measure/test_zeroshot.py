"""Zero-shot through lm-eval on the tiny model: every task, both run paths agree, errors."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from slimllm.cli import main
from slimllm.experiments import recipes
from slimllm.experiments.runners import zeroshot_config
from slimllm.experiments.store import config_key
from slimllm.measure.lm_eval_tasks import REPORTED_METRIC, SEVEN_TASKS, TASK_PREFIX
from slimllm.measure.zeroshot import zeroshot
from slimllm.models import surgery
from slimllm.models.adapters import get_adapter
from slimllm.models.io import load_pruned, save_pruned
from slimllm.models.loaders import byte_tokenizer, load_model, tiny_model
from tests.helpers import ROOT

LM_EVAL = Path(sys.executable).with_name("lm_eval")


@pytest.fixture(scope="module")
def tiny() -> tuple[Any, Any]:
    return load_model("tiny-llama")


def test_zeroshot_every_local_task(tiny: tuple[Any, Any], shared_data_dir: Path) -> None:
    model, tokenizer = tiny
    res = zeroshot(model, tokenizer, limit=3, data_dir=shared_data_dir, batch_size=8)
    assert list(res.tasks) == list(SEVEN_TASKS)
    for name, row in res.tasks.items():
        assert row["n"] == 3 and row["metric"] == REPORTED_METRIC[name]
        assert row["value"] == row[row["metric"]]
        assert 0 <= row["acc"] <= 1 and 0 <= row["acc_norm"] <= 1
        assert math.isfinite(row["stderr"])
        assert res.correct[name]["acc"] and sum(res.correct[name]["acc"]) / 3 == row["acc"]
        assert res.items[name] == sorted(res.items[name]) and len(set(res.items[name])) == 3
    assert res.mean == pytest.approx(sum(r["value"] for r in res.tasks.values()) / 7)
    assert res.settings["batch_size"] == 8 and res.settings["dtype"] == "float32"
    assert res.settings["backend"] == "fast" and res.loglikelihoods == {}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tasks": ["boolq", "mmlu"]}, "unknown zero-shot task.*mmlu.*choose from boolq"),
        ({"tasks": []}, "unknown zero-shot task"),
        ({"limit": 0}, "limit must be None or an integer >= 1"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"backend": "vllm"}, "backend must be one of fast, hflm"),
    ],
)
def test_bad_arguments_fail_clearly(
    tiny: tuple[Any, Any], shared_data_dir: Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        zeroshot(*tiny, data_dir=shared_data_dir, **kwargs)


def test_committed_records_keep_their_keys() -> None:
    """The backend is not in a zero-shot record's key: the dense 500-item record HFLM measured
    is still the one `zeroshot_config` names."""
    config = zeroshot_config(recipes.dense(), list(SEVEN_TASKS), 500, 0, "bfloat16")
    assert "backend" not in config
    assert (ROOT / "results" / "zeroshot" / f"{config_key('zeroshot', config)}.json").is_file()


@pytest.fixture(scope="module")
def pruned_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = tiny_model("tiny-llama")
    adapter = get_adapter(model)
    first, second, _ = adapter.layers(model)
    surgery.prune_attention_heads(first, adapter, [0, 1])
    surgery.prune_mlp_channels(second, adapter, range(0, 96, 3))
    out = tmp_path_factory.mktemp("zs") / "pruned"
    return save_pruned(model, byte_tokenizer(), out, {"test": "zeroshot"})


CLI_TASKS = "boolq,piqa,hellaswag,winogrande,arc_challenge"


def test_in_process_and_lm_eval_cli_agree(
    pruned_dir: Path, shared_data_dir: Path, tmp_path: Path
) -> None:
    """`slimllm eval --zeroshot` and lm-eval's own command line on `slimllm tasks` YAMLs."""
    yamls = tmp_path / "tasks"
    common = ["--tasks", CLI_TASKS, "--limit", "4", "--seed", "5"]
    assert main(["tasks", str(yamls), *common, "--data-dir", str(shared_data_dir)]) == 0
    report = tmp_path / "slim.json"
    argv = ["eval", str(pruned_dir), "--zeroshot", *common, "--json", str(report)]
    argv += ["--dtype", "float32"]  # the saved dtype, which lm-eval's hf model loads in
    assert main([*argv, "--data-dir", str(shared_data_dir), "--zeroshot-batch-size", "4"]) == 0
    ours = json.loads(report.read_text())["zeroshot"]["result"]
    manifest = json.loads((yamls / "slimllm_tasks.json").read_text())
    assert manifest["items"] == ours["items"]

    lm_names = ",".join(TASK_PREFIX + t for t in CLI_TASKS.split(","))
    out = tmp_path / "lm_eval_out"
    cmd = [
        str(LM_EVAL),
        "--model",
        "hf",
        "--model_args",
        f"pretrained={pruned_dir},trust_remote_code=True",
        "--include_path",
        str(yamls),
        "--tasks",
        lm_names,
        "--num_fewshot",
        "0",
        "--batch_size",
        "4",
        "--device",
        "cpu",
        "--output_path",
        str(out),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(next(out.rglob("results_*.json")).read_text())["results"]
    for task in CLI_TASKS.split(","):
        theirs = results[TASK_PREFIX + task]
        for metric in ("acc", "acc_norm"):
            assert ours["tasks"][task][metric] == pytest.approx(theirs[f"{metric},none"]), task
    # Not a vacuous match: the items are scored differently across tasks.
    assert len({ours["tasks"][t]["acc"] for t in CLI_TASKS.split(",")}) > 1


def test_the_same_pruned_model_in_process(pruned_dir: Path, shared_data_dir: Path) -> None:
    model, tokenizer = load_pruned(pruned_dir)
    res = zeroshot(model, tokenizer, ["piqa"], limit=2, data_dir=shared_data_dir)
    assert res.tasks["piqa"]["n"] == 2 and res.record["model"]["pruning"] == {"test": "zeroshot"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["eval", "tiny-llama", "--zeroshot", "--limit", "0"], "--limit: must be an integer >= 1"),
        (["eval", "tiny-llama", "--zeroshot", "--tasks", "boolq,mmlu"], "unknown task.*mmlu"),
        (["tasks", "d", "--tasks", "squad"], "unknown task.*squad.*choose from boolq"),
        (["eval", "tiny-llama", "--zeroshot-batch-size", "0"], "must be an integer >= 1"),
    ],
)
def test_cli_bad_arguments(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert any(line.startswith("slimllm") and "error" in line for line in err)
    assert re.search(message, err[-1])


def test_cli_runtime_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    assert main(["eval", str(empty), "--zeroshot"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a model folder" in err
    (tmp_path / "data").mkdir()
    assert main(["tasks", str(tmp_path / "y"), "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "boolq/dev.jsonl" in err
