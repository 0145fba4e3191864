"""Presets: every notebook's parameters cell holds the cpu values; smoke and paper resolve and
validate without a GPU (the paper preset's dry run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from slimllm.book import presets, run_notebooks
from tests.helpers import NOTEBOOKS


def test_every_preset_has_the_common_names() -> None:
    for name, values in presets.PRESETS.items():
        assert tuple(values) == presets.COMMON, name


def test_resolve_applies_notebook_overrides() -> None:
    assert presets.resolve("cpu")["model"] == "smollm2-135m"
    assert presets.resolve("cpu", "01_setup_and_dense_baseline")["eval_windows"] is None
    assert (
        presets.resolve("smoke", "notebooks/01_setup_and_dense_baseline.ipynb")["eval_windows"]
        == presets.PRESETS["smoke"]["eval_windows"]
    )
    with pytest.raises(ValueError, match="unknown preset"):
        presets.resolve("laptop")


def test_overrides_name_known_presets_only() -> None:
    for stem, by_preset in presets.OVERRIDES.items():
        assert set(by_preset) <= set(presets.PRESETS), stem


@pytest.mark.parametrize("preset", list(presets.PRESETS))
def test_presets_validate(preset: str) -> None:
    presets.validate(presets.resolve(preset))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"model": "no-such-model"}, "hub id"),
        ({"device": "gpu0"}, "torch device"),
        ({"dtype": "float8"}, "dtype"),
        ({"ratios": [0.2, 1.5]}, "ratio"),
        ({"ratios": 0.2}, "list"),
        ({"alpha": -1.0, "ratios": [0.2]}, "alpha"),
        ({"calib_samples": 0, "ratios": [0.2]}, "calib_samples"),
        ({"eval_windows": 0}, "eval_windows"),
        ({"results_dir": 3}, "results_dir"),
    ],
)
def test_validate_rejects_bad_values(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        presets.validate(values)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell_holds_the_cpu_values(notebook: Path) -> None:
    declared = run_notebooks.declared_parameters(notebook)
    missing = [name for name in presets.COMMON if name not in declared]
    assert not missing, f"{notebook.name} does not declare {missing}"
    cpu = presets.resolve("cpu", notebook)
    differ = {k: (declared[k], v) for k, v in cpu.items() if k in declared and declared[k] != v}
    assert not differ, f"{notebook.name}: cell value != cpu preset: {differ}"
    overrides = presets.OVERRIDES.get(notebook.stem, {})
    for preset, values in overrides.items():
        assert set(values) <= set(declared), (notebook.name, preset)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_overrides_entry(notebook: Path) -> None:
    assert notebook.stem in presets.OVERRIDES


def test_paper_dry_run_resolves_every_notebook(capsys: pytest.CaptureFixture[str]) -> None:
    """The paper preset, checked without a GPU: every notebook's parameters resolve and validate."""
    argv = ["--preset", "paper", "--dry-run", *map(str, NOTEBOOKS)]
    assert run_notebooks.main(argv) == 0
    out = capsys.readouterr().out
    import json

    plan = json.loads(out)
    assert len(plan) == len(NOTEBOOKS)
    for values in plan.values():
        assert values["model"] == "huggyllama/llama-7b"
        assert values["device"] == "cuda"
