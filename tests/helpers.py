"""Helpers the test modules import: the checkout's paths, seeded noise, tiny calibration folders,
small `slimllm prune` command lines, a hand-pruned tiny GQA model and the check that a pruning
report matches its model."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from slimllm.method.regression import fold_regression
from slimllm.method.report import PruneReport
from slimllm.models import surgery
from slimllm.models.adapters import get_adapter
from slimllm.models.loaders import tiny_model

ROOT = Path(__file__).resolve().parents[1]


def load_benchmark(name: str) -> ModuleType:
    """benchmarks/`name`.py imported as a module (the folder is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


"""The checkout: pyproject.toml, notebooks/, results/ and tests/ are below it."""

NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").glob("*.ipynb") if not p.name.startswith("."))
"""The committed notebooks, in the book's order (hidden files are editor or tool scratch copies)."""

NOVELS = "bookcorpus_substitute_gutenberg"


def randn(seed: int, *shape: int) -> torch.Tensor:
    """Seeded float64 normal noise, the same for a seed whatever ran before."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def write_novels(root: Path, *texts: str) -> Path:
    """`root` made a data folder whose calibration novels are `texts` (a.txt, b.txt, ...)."""
    novels = root / NOVELS
    novels.mkdir(parents=True)
    for i, text in enumerate(texts):
        (novels / f"{chr(ord('a') + i)}.txt").write_text(text)
    return root


def small_calibration_argv(data_dir: str | Path) -> list[str]:
    """`slimllm prune` options: 8 calibration windows of 32 tokens from `data_dir`, on the CPU."""
    calibration = ["--calib-samples", "8", "--calib-seq-len", "32", "--data-dir", str(data_dir)]
    return [*calibration, "--device", "cpu"]


def flap_prune_argv(data_dir: str | Path, *more: str) -> list[str]:
    """`slimllm prune` of tiny-gqa by FLAP to 30 % of the decoder, on small calibration data."""
    prune = ["prune", "tiny-gqa", "--method", "flap", "--ratio", "0.3", "--ratio-of", "decoder"]
    return [*prune, *small_calibration_argv(data_dir), *more]


def assert_report_matches_shapes(model: nn.Module, report: PruneReport) -> None:
    """The report counts the decoder's parameters, and each layer's kept heads and channels are
    the pruned model's shapes (with whole KV groups)."""
    adapter = get_adapter(model)
    assert report.decoder_params_after == sum(p.numel() for p in adapter.layers(model).parameters())
    for layer, row in zip(adapter.layers(model), report.layers, strict=True):
        shape = adapter.attention_shape(layer)
        assert shape.num_heads == len(row.heads_kept)
        assert shape.num_heads == shape.num_kv_heads * layer.self_attn.num_key_value_groups
        assert adapter.intermediate_size(layer) == row.channels_kept


def add_regression_bias(linear: nn.Linear, seed: int) -> None:
    """Fold a seeded regression (scale near 1, small bias) into `linear`, giving it a bias."""
    gen = torch.Generator().manual_seed(seed)
    a = 1 + 0.1 * torch.randn(linear.out_features, generator=gen)
    b = 0.1 * torch.randn(linear.out_features, generator=gen)
    weight, bias = fold_regression(linear.weight.data, linear.bias, a, b)
    surgery.set_output_bias(linear, weight, bias)


def pruned_gqa() -> nn.Module:
    """tiny-gqa pruned by hand: layer 0 keeps 4 of 6 query heads (GQA case (a), fewer heads per
    group), layer 1 drops a key/value group (case (b)) and half its MLP channels, layer 2 keeps
    40 channels; regression biases on layer 0's o_proj and layer 2's down_proj."""
    model = tiny_model("tiny-gqa")
    adapter = get_adapter(model)
    first, second, third = adapter.layers(model)
    surgery.prune_attention_heads(first, adapter, [0, 2, 3, 5])
    surgery.prune_attention_heads(second, adapter, [3, 4])
    surgery.prune_mlp_channels(second, adapter, range(0, 96, 2))
    surgery.prune_mlp_channels(third, adapter, range(40))
    add_regression_bias(adapter.attention_projections(first).o, 1)
    add_regression_bias(adapter.mlp_projections(third).down, 2)
    return model
