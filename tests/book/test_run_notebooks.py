"""run_notebooks on tiny notebooks: parameters, in-place runs, failures, presets, output folders."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from slimllm.book import run_notebooks


def test_parse_value() -> None:
    assert run_notebooks.parse_value("None") is None
    assert run_notebooks.parse_value("16") == 16
    assert run_notebooks.parse_value("0.5") == 0.5
    assert run_notebooks.parse_value("smollm2-135m") == "smollm2-135m"


def write_notebook(path: Path, *sources: str) -> Path:
    cells = [new_code_cell("x = 1", metadata={"tags": ["parameters"]})]
    cells += [new_code_cell(source) for source in sources]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


def stdout_of(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "".join(out.get("text", "") for cell in nb.cells for out in cell.get("outputs", []))


def test_run_notebook_in_place(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "ok.ipynb", "import os\nprint(x * 2, os.getcwd())")
    run_notebooks.run_notebook(path, {"x": 21}, progress=False)
    assert stdout_of(path).split() == ["42", str(tmp_path)]  # parameters applied, cwd = its folder
    # A later run without parameters must not keep the earlier run's injected values.
    assert run_notebooks.main([str(path), "--no-progress"]) == 0
    assert stdout_of(path).split()[0] == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.ipynb"]  # nothing left behind


def test_failing_notebook_is_left_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_notebook(tmp_path / "broken.ipynb", "print('before')", "raise ValueError('boom')")
    original = path.read_bytes()
    with pytest.raises(run_notebooks.NotebookError, match=r"broken\.ipynb.*ValueError: boom"):
        run_notebooks.run_notebook(path, progress=False)
    assert run_notebooks.main([str(path), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "broken.ipynb" in err and "ValueError: boom" in err
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.ipynb"]


def test_missing_notebook_is_reported(tmp_path: Path) -> None:
    assert run_notebooks.main([str(tmp_path / "nope.ipynb")]) == 2


def test_preset_parameters_only_sets_declared_names(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "p.ipynb", "print(x)")
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source = 'x = 1\nmodel = "smollm2-135m"\nratios = [0.2, 0.5]'
    nbformat.write(nb, path)
    assert run_notebooks.declared_parameters(path) == {
        "x": 1,
        "model": "smollm2-135m",
        "ratios": [0.2, 0.5],
    }
    # Only what differs from the cell is injected: ratios are the same in smoke and in the cell.
    assert run_notebooks.preset_parameters(path, "smoke") == {"model": "tiny-gqa"}
    assert run_notebooks.preset_parameters(path, "cpu") == {}
    assert run_notebooks.preset_parameters(path, "cpu", {"x": 3}) == {"x": 3}
    with pytest.raises(ValueError, match="does not declare"):
        run_notebooks.preset_parameters(path, "cpu", {"nope": 3})
    with pytest.raises(ValueError, match="ratio"):
        run_notebooks.preset_parameters(path, None, {"ratios": [2.0]})


def test_smoke_preset_needs_an_output_dir(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "s.ipynb", "print(x)")
    assert run_notebooks.main([str(path), "--preset", "smoke", "--no-progress"]) == 2


def test_output_dir_leaves_the_original(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    src.mkdir()
    path = write_notebook(src / "o.ipynb", "import os\nprint(x, os.environ['SLIMLLM_RESULTS_DIR'])")
    original = path.read_bytes()
    out = tmp_path / "out"
    monkeypatch.delenv("SLIMLLM_RESULTS_DIR", raising=False)
    assert run_notebooks.main([str(path), "--output-dir", str(out), "--no-progress"]) == 0
    assert path.read_bytes() == original
    assert stdout_of(out / "o.ipynb").split() == ["1", str(out.resolve() / "results")]
