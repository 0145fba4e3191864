"""Every notebook runs end to end in the `smoke` preset (tiny random models, scratch outputs).

The executed copies, their results store and their figures go to a temporary folder; the
committed notebooks, records and figures are never touched.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from slimllm.book import check_book, run_notebooks
from tests.helpers import NOTEBOOKS

pytestmark = pytest.mark.notebooks


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_smoke_preset(
    notebook: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = notebook.read_bytes()
    argv = ["--preset", "smoke", "--output-dir", str(tmp_path), "--no-progress", str(notebook)]
    # main() points the kernel's store and figures at tmp_path through the environment.
    monkeypatch.setenv("SLIMLLM_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("SLIMLLM_FIGURES_DIR", str(tmp_path / "figures"))
    assert run_notebooks.main(argv) == 0
    assert notebook.read_bytes() == before
    executed = tmp_path / notebook.name
    nb = nbformat.read(executed, as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    # Every exercise solution that computes ran (it is hidden in the page, not skipped here).
    solutions = [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
    assert all(c.get("execution_count") for c in solutions)
    assert check_book.check_notebook_figures(executed) == []
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "tiny-gqa" in injected[0].source  # smoke differs from cpu
