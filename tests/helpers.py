"""Helpers the test modules import: the checkout's paths, seeded noise, tiny calibration folders,
small `slimllm prune` command lines and the check that a pruning report matches its model."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from slimllm.method.report import PruneReport
from slimllm.models.adapters import get_adapter

ROOT = Path(__file__).resolve().parents[1]
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
