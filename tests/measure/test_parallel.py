"""Evaluation across processes: the shares cover the work once, and `slimllm eval` under
`accelerate launch` with 2 CPU processes writes the numbers of a one-process run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from slimllm.cli import main
from slimllm.measure import parallel
from tests.helpers import ROOT

ACCELERATE = Path(sys.executable).with_name("accelerate")


def test_one_process_takes_all_the_work(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in parallel.WORLD_ENV:
        monkeypatch.delenv(name, raising=False)
    assert not parallel.launched()
    assert parallel.join("cpu") == "cpu"
    assert parallel.rank_and_world() == (0, 1)
    assert parallel.share(5) == range(5)
    assert parallel.gather([1.5, 2.5]) == [1.5, 2.5]
    assert parallel.from_first({"a": 1}) == {"a": 1}
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert parallel.launched()


@pytest.mark.parametrize("n", [0, 1, 5, 8])
def test_shares_split_the_work_in_order(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    shares = []
    for rank in range(3):
        monkeypatch.setattr(parallel, "rank_and_world", lambda r=rank: (r, 3))
        shares.append(parallel.share(n))
    assert [i for s in shares for i in s] == list(range(n))
    assert max(map(len, shares)) - min(map(len, shares)) <= (1 if n else 0)


def _records(folder: Path) -> dict[str, dict[str, Any]]:
    return {
        kind: json.loads(next((folder / kind).glob("*.json")).read_text())
        for kind in ("perplexity", "zeroshot")
    }


@pytest.mark.slow
def test_two_cpu_processes_write_the_numbers_of_one(
    tmp_path: Path, shared_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["eval", "tiny-gqa", "--ppl", "wikitext2", "--max-windows", "10", "--batch-size", "3"]
    args += ["--zeroshot", "--tasks", "arc_easy,winogrande", "--limit", "7"]
    args += ["--device", "cpu", "--dtype", "float32", "--data-dir", str(shared_data_dir)]
    assert main([*args, "--results-dir", str(tmp_path / "one")]) == 0
    # accelerate's --cpu launcher needs mpirun for several processes; torchrun's does not.
    launch = [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2"]
    launch += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [*launch, "-m", "slimllm.cli", *args, "--results-dir", str(tmp_path / "two")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("records written under") == 1  # process 0 reports alone
    one, two = _records(tmp_path / "one"), _records(tmp_path / "two")
    assert two["perplexity"]["settings"]["processes"] == 2
    assert one["perplexity"]["settings"]["processes"] == 1
    ppl_one, ppl_two = one["perplexity"]["result"], two["perplexity"]["result"]
    assert ppl_two["n_windows"] == ppl_one["n_windows"] == 10
    assert ppl_two["window_nll"] == ppl_one["window_nll"]
    assert ppl_two["ppl"] == ppl_one["ppl"]
    zs_one, zs_two = one["zeroshot"]["result"], two["zeroshot"]["result"]
    for field in ("items", "correct", "mean"):
        assert zs_two[field] == zs_one[field], field
    for task, row in zs_one["tasks"].items():
        # lm-eval sums the gathered items in another order: a stderr may move in the last bit.
        for key, value in row.items():
            expected = pytest.approx(value, rel=1e-12) if "stderr" in key else value
            assert zs_two["tasks"][task][key] == expected, (task, key)
