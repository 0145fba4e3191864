"""Shared fixtures: one thread per test process (tiny matmuls thrash on a busy 2-core box)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.helpers import ROOT

SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The offline data folder (SLIMLLM_DATA_DIR, else ../shared/data); skip when absent."""
    root = Path(os.environ.get("SLIMLLM_DATA_DIR") or SHARED_DATA)
    if not root.is_dir():
        pytest.skip(f"no data directory at {root}")
    return root


@pytest.fixture(autouse=True)
def _results_in_tmp(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records written by a test go to a temporary store, never into the checkout's results/."""
    monkeypatch.setenv("SLIMLLM_RESULTS_DIR", str(tmp_path_factory.mktemp("results")))
