"""Named parameter sets for the notebooks: `smoke`, `cpu` (the default) and `paper`.

Every notebook has one cell tagged `parameters` holding the `cpu` values of the common names
below (plus any extras of its own). A preset replaces them through papermill:

    python -m slimllm.book.run_notebooks --preset paper notebooks/04_head_importance.ipynb

- `smoke`: seeded random 3-layer models, a few calibration windows; seconds per notebook (tests).
- `cpu`: SmolLM2-135M on a laptop-class CPU, the values the committed notebooks were run with.
- `paper`: LLaMA-7B on a GPU with the paper's settings (32 x 128 calibration tokens from
  BookCorpus, seed 42, full test sets).

A value that one notebook needs different from the common one lives in `OVERRIDES[stem][preset]`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from slimllm.method.config import PruneConfig
from slimllm.models.loaders import EMBEDDED, TINY, parse_dtype

#: The names every notebook's parameters cell declares, in this order.
COMMON = (
    "model",
    "device",
    "dtype",
    "ratios",
    "alpha",
    "calib_samples",
    "calib_seq_len",
    "eval_windows",
    "seed",
    "data_dir",
    "results_dir",
)


PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {
        "model": "tiny-gqa",
        "device": "cpu",
        "dtype": "float32",
        "ratios": [0.2, 0.5],
        "alpha": None,
        "calib_samples": 4,
        "calib_seq_len": 32,
        "eval_windows": 2,
        "seed": 42,
        "data_dir": None,
        "results_dir": None,
    },
    "cpu": {
        "model": "smollm2-135m",
        "device": "cpu",
        "dtype": "float32",
        "ratios": [0.2, 0.5],
        "alpha": None,
        "calib_samples": 32,
        "calib_seq_len": 128,
        "eval_windows": 32,
        "seed": 42,
        "data_dir": None,
        "results_dir": None,
    },
    "paper": {
        "model": "huggyllama/llama-7b",
        "device": "cuda",
        "dtype": "float16",
        "ratios": [0.2, 0.5],
        "alpha": None,
        "calib_samples": 32,
        "calib_seq_len": 128,
        "eval_windows": None,
        "seed": 42,
        "data_dir": None,
        "results_dir": None,
    },
}


#: Per-notebook values, by notebook file stem and preset, applied over PRESETS[preset].
OVERRIDES: dict[str, dict[str, dict[str, Any]]] = {
    # The dense baseline is a full-set measurement, read from the store on the CPU.
    "01_setup_and_dense_baseline": {"cpu": {"eval_windows": None}},
    "02_framework_overview": {},
    "03_pca_preliminaries": {
        "smoke": {"example_layer": 1},
        "paper": {"example_layer": 15},
    },
    "04_head_importance": {
        "smoke": {"example_layer": 1},
        "paper": {"example_layer": 15, "exhaustive_max_subsets": 20_000},
    },
    "05_channel_importance": {
        # Tiny models prune in coarse steps: targets they can meet, as fractions of the decoder.
        "smoke": {
            "example_layer": 1,
            "spectrum_layers": [0, 1, 2],
            "ratios": [0.2, 0.4],
            "ratio_of": "decoder",
        },
        "paper": {"example_layer": 15, "spectrum_layers": [0, 1, 15, 30, 31]},
    },
    "06_regression": {"smoke": {"ratios": [0.2, 0.4], "figure_ratio": 0.4, "ratio_of": "decoder"}},
    "07_layer_ratios": {
        "smoke": {
            "ratios": [0.2, 0.4],
            "layer_counts": [2, 3],
            "targets": [0.1, 0.2, 0.3, 0.4],
            "ratio_of": "decoder",
        },
        "paper": {"layer_counts": [16, 26, 30]},
    },
    "08_slimllm_on_smollm2": {
        # The recorded full-set perplexities; the tiny models measure a few windows instead.
        "cpu": {"eval_windows": None},
        "smoke": {
            "ratio_of": "decoder",  # every variant meets 20 % and 50 % of the tiny decoder
            "live_calib_samples": 2,
            "live_eval_windows": 2,
        },
    },
}


DEFAULT_PRESET = "cpu"


def names() -> list[str]:
    return list(PRESETS)


def resolve(preset: str, notebook: str | Path | None = None) -> dict[str, Any]:
    """The values of `preset` for a notebook (a path or file stem): common ones + overrides."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {names()}")
    values = dict(PRESETS[preset])
    if notebook is not None:
        values.update(OVERRIDES.get(Path(notebook).stem, {}).get(preset, {}))
    return values


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_model_name(model: str) -> None:
    """A model the loader can resolve without opening it: embedded, tiny, a hub id or a path."""
    if not isinstance(model, str) or not model:
        raise ValueError(f"model must be a non-empty string, got {model!r}")
    if model in EMBEDDED or model in TINY or Path(model).exists():
        return
    if model.count("/") != 1 or model.startswith(("/", ".")):
        raise ValueError(
            f"model {model!r} is not one of {sorted([*EMBEDDED, *TINY])}, an existing path, "
            "or a hub id 'org/name'"
        )


def validate(values: dict[str, Any]) -> None:
    """Check resolved parameters without loading a model or touching a GPU (the dry run).

    Every common name present is checked for type and range, and each target ratio is checked
    as a `PruneConfig` together with alpha, the calibration size and the seed.
    """
    if "model" in values:
        check_model_name(values["model"])
    if "device" in values:
        try:
            torch.device(values["device"])
        except (RuntimeError, TypeError) as err:
            raise ValueError(f"device {values['device']!r} is not a torch device") from err
    if "dtype" in values:
        parse_dtype(values["dtype"])
    for name in ("calib_samples", "calib_seq_len", "seed"):
        if name in values and not (_is_int(values[name]) and values[name] >= 0):
            raise ValueError(f"{name} must be a non-negative int, got {values[name]!r}")
    windows = values.get("eval_windows")
    if windows is not None and not (_is_int(windows) and windows >= 1):
        raise ValueError(f"eval_windows must be None (full sets) or an int >= 1, got {windows!r}")
    for name in ("data_dir", "results_dir"):
        if values.get(name) is not None and not isinstance(values[name], str):
            raise ValueError(f"{name} must be None or a path string, got {values[name]!r}")
    ratios = values.get("ratios", [])
    if not isinstance(ratios, list) or not all(
        isinstance(r, (int, float)) and math.isfinite(r) for r in ratios
    ):
        raise ValueError(f"ratios must be a list of numbers, got {ratios!r}")
    for ratio in ratios:
        PruneConfig(
            ratio=float(ratio),
            alpha=values.get("alpha"),
            calib_samples=values.get("calib_samples", 32),
            calib_seq_len=values.get("calib_seq_len", 128),
            seed=values.get("seed", 42),
        ).validate()
