"""benchmarks/prune_scale.py names the code it ran: from git in a checkout, from
$SLIMLLM_CODE_COMMIT in a copy of the tree without .git (a GPU machine's copy)."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
import torch

from tests.helpers import load_benchmark


@pytest.fixture(scope="module")
def scale() -> ModuleType:
    return load_benchmark("prune_scale")


def test_a_checkout_names_its_head(scale: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(scale.CODE_COMMIT_ENV, "not-this-one")
    head = subprocess.run(
        ["git", "-C", str(scale.ROOT), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    code = scale.code_version()
    assert code["code"] == head
    assert isinstance(code["code_edited"], bool)
    assert "code_source" not in code


def test_a_copy_without_git_takes_the_named_commit(
    scale: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(scale, "ROOT", tmp_path)
    monkeypatch.setenv(scale.CODE_COMMIT_ENV, "c99804d")
    code = scale.code_version()
    assert code == {
        "code": "c99804d",
        "code_edited": None,
        "code_source": f"${scale.CODE_COMMIT_ENV}",
    }
    monkeypatch.delenv(scale.CODE_COMMIT_ENV)
    with pytest.raises(SystemExit, match=scale.CODE_COMMIT_ENV):
        scale.code_version()


def test_the_shared_options_build_the_named_random_model(
    scale: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A small vocabulary keeps the one-layer LLaMA-7B shape quick to build.
    monkeypatch.setitem(scale.COMMON, "vocab_size", 64)
    parser = argparse.ArgumentParser()
    scale.add_model_arguments(parser, "bfloat16", "the test's")
    args = parser.parse_args(["--device", "cpu", "--layers", "1", "--threads", "1"])
    assert (args.shape, args.dtype, args.replace) == ("llama-7b", "bfloat16", False)
    threads = torch.get_num_threads()
    try:
        model, record, device = scale.model_from_arguments(args)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)  # the rest of the session keeps its threads
    assert device == torch.device("cpu")
    assert model.config.num_hidden_layers == 1 and model.dtype == torch.bfloat16
    assert record["random_llama"]["num_hidden_layers"] == 1
    assert record["random_llama"]["hidden_size"] == 4096
