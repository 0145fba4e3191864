"""Presets: every notebook's parameters cell holds the cpu values; smoke and paper resolve and
validate without a GPU (the paper preset's dry run)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from slimllm.book import budget, presets, run_notebooks
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
    """The paper preset, checked without a GPU or its weights: every notebook's parameters
    resolve and validate on LLaMA-7B's config (built on the meta device), with the memory and
    time each will need, and no SmolLM2 name left in what runs."""
    argv = ["--preset", "paper", "--dry-run", *map(str, NOTEBOOKS)]
    assert run_notebooks.main(argv) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["assumptions"]["gpu"]["source"] and 0 < plan["assumptions"]["utilisation"] <= 1
    assert len(plan["notebooks"]) == len(NOTEBOOKS)
    for name, entry in plan["notebooks"].items():
        values, needs = entry["parameters"], entry["needs"]
        assert values["model"] == "huggyllama/llama-7b"
        assert values["device"] == "cuda"
        assert "smollm2" not in json.dumps(values).lower(), name
        assert needs["config"].startswith("slimllm.models.reference_configs"), name
        # LLaMA-7B: 6.74 B parameters, 12.55 GiB in float16.
        assert needs["layers"] == 32 and needs["parameters"] == 6_738_415_616
        assert needs["weights_gib"] == pytest.approx(6_738_415_616 * 2 / 2**30, abs=0.01)
        assert needs["weights_gib"] <= needs["peak_gib"] and needs["fits"], name
        work = needs["work"]
        busy = work["prunes"] or work["statistics_passes"] or work["evaluations"]
        assert (needs["tflop"] > 0) == bool(busy), name
    needs = [entry["needs"] for entry in plan["notebooks"].values()]
    assert plan["total"]["minutes"] == pytest.approx(sum(n["minutes"] for n in needs), abs=0.1)
    assert plan["total"]["peak_gib"] == max(n["peak_gib"] for n in needs)
    # Full test sets (eval_windows None) count far more tokens than a 32-window slice.
    setup = plan["notebooks"][str(NOTEBOOKS[0])]["needs"]["work"]
    assert setup["evaluations"] == 3 and setup["evaluated_tokens"] > 3 * 32 * 128


def _paper_values(stem: str) -> dict:
    """All the parameters a notebook runs with under the paper preset."""
    path = next(p for p in NOTEBOOKS if p.stem == stem)
    declared = run_notebooks.declared_parameters(path)
    return {**declared, **run_notebooks.preset_parameters(path, "paper")}


def test_estimate_counts_the_work_of_the_parameters() -> None:
    values = _paper_values("06_regression")
    one = budget.estimate("06_regression", {**values, "ratios": [0.2]})
    two = budget.estimate("06_regression", values)
    assert one is not None and two is not None
    assert (one["work"]["prunes"], two["work"]["prunes"]) == (2, 4)
    assert two["tflop"] > one["tflop"] and two["minutes"] > one["minutes"]
    assert budget.estimate("claims", {"results_dir": None}) is None


def test_layer_parameters_must_fit_the_model() -> None:
    values = _paper_values("05_channel_importance")
    with pytest.raises(ValueError, match="spectrum_layers"):
        budget.estimate("05_channel_importance", {**values, "spectrum_layers": [0, 32]})
    with pytest.raises(ValueError, match="layer_counts"):
        budget.check_layers({"layer_counts": [16, 33]}, 32, "07_layer_ratios")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_has_its_work_counted(notebook: Path) -> None:
    assert notebook.stem in budget.WORK


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_code_names_the_model_only_through_its_parameter(notebook: Path) -> None:
    """A preset changes the model by its `model` parameter alone: no other code cell names one."""
    cells = nbformat.read(notebook, as_version=4).cells
    others = [
        c.source
        for c in cells
        if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])
    ]
    # The notebook's own file name may appear (08's does); a model's name may not.
    named = [s for s in others if "smollm2" in s.replace(notebook.stem, "").lower()]
    assert not named, notebook.name
