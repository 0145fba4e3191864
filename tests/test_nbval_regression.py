"""nbval is a regression test: a changed stored number fails it, sanitized noise does not.

`make test` runs plain `--nbval` with tests/nbval_sanitize.cfg; this runs the same in a
subprocess on a tiny executed notebook, then edits its stored output.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from slimllm.book import run_notebooks

SANITIZE = Path(__file__).resolve().parent / "nbval_sanitize.cfg"

pytestmark = pytest.mark.notebooks


def executed_notebook(folder: Path) -> Path:
    cells = [
        new_code_cell("x = 6", metadata={"tags": ["parameters"]}),
        new_code_cell("print(f'result: {x * 7:.3f}')"),
        # Everything here varies between runs and is sanitized: a timing, a date, an address,
        # a temporary path and the thread count.
        new_code_cell(
            "import datetime, tempfile, time, torch\n"
            "t = time.perf_counter()\n"
            "print(f'took {time.perf_counter() - t + 1e-3:.5f} s on',"
            " datetime.datetime.now().isoformat())\n"
            "print(hex(id(t) + 0x10000000), tempfile.mkdtemp(),"
            " f'{torch.get_num_threads() + time.time_ns() % 7} threads')"
        ),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = folder / "tiny.ipynb"
    nbformat.write(nb, path)
    run_notebooks.run_notebook(path, progress=False)
    return path


def nbval(path: Path) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--nbval",
        str(path),
        "--nbval-sanitize-with",
        str(SANITIZE),
        "-p",
        "no:cacheprovider",
        "-q",
    ]
    return subprocess.run(command, cwd=path.parent, capture_output=True, text=True, timeout=300)


def test_changed_stored_number_fails_nbval(tmp_path: Path) -> None:
    path = executed_notebook(tmp_path)
    ok = nbval(path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    nb = nbformat.read(path, as_version=4)
    output = nb.cells[1].outputs[0]
    assert output["text"] == "result: 42.000\n"
    output["text"] = "result: 42.001\n"
    nbformat.write(nb, path)
    bad = nbval(path)
    assert bad.returncode != 0
    assert "1 failed" in bad.stdout and "42.001" in bad.stdout


def test_every_nbval_marker_in_the_notebooks_is_one_nbval_reads() -> None:
    """nbval matches a marker comment exactly: "# NBVAL_IGNORE_OUTPUT (why)" is an ordinary
    comment, and its cell would be compared after all."""
    root = Path(__file__).resolve().parents[1] / "notebooks"
    loose = []
    for path in sorted(root.rglob("*.ipynb")):
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            for line in cell.source.splitlines():
                text = line.strip().lstrip("#").strip()
                if line.strip().startswith("#") and text.startswith("NBVAL_") and " " in text:
                    loose.append(f"{path.name} cell {index}: {line.strip()}")
    assert not loose, "put the reason on the next line:\n" + "\n".join(loose)
