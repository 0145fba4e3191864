"""`slimllm prune MODEL --ratio R --out DIR`: prune heads and MLP channels, save the model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from slimllm.cli.common import (
    MODELS_HELP,
    HelpFormatter,
    add_data_dir,
    add_device,
    device_or_default,
    positive,
    positive_int,
    ratio,
    summary_table,
)
from slimllm.models import DEFAULT_MODEL, DTYPES, load_model
from slimllm.plan import GQA_MODES
from slimllm.pruner import PruneConfig, prune


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "prune",
        help="prune a model and save it",
        formatter_class=HelpFormatter,
        description="Prune heads and MLP channels with SlimLLM and save the smaller model.",
    )
    p.add_argument(
        "model",
        nargs="?",
        default=DEFAULT_MODEL,
        help=f"{MODELS_HELP}, a local directory or a hub id",
    )
    p.add_argument(
        "--ratio", type=ratio, required=True, help="fraction of parameters to remove, in [0, 1)"
    )
    p.add_argument("--out", type=Path, required=True, help="directory to write the pruned model to")
    p.add_argument(
        "--ratio-of",
        choices=("model", "decoder"),
        default="model",
        help="the ratio is a fraction of all parameters (paper) or of the decoder layers'",
    )
    p.add_argument(
        "--alpha",
        type=positive,
        default=None,
        help="Eq. 11 temperature (default: 10 below 35%%, else 7)",
    )
    p.add_argument(
        "--layers",
        type=int,
        default=None,
        help="number of layers to prune, the most similar ones (default: 26/32 or 30/32 of them)",
    )
    p.add_argument(
        "--max-layer-ratio", type=float, default=0.9, help="cap on any one layer's ratio"
    )
    p.add_argument("--calib-samples", type=int, default=32, help="calibration windows")
    p.add_argument("--calib-seq-len", type=int, default=128, help="tokens per calibration window")
    p.add_argument("--seed", type=int, default=42, help="calibration sampling seed")
    p.add_argument(
        "--head-reduction",
        choices=("per_dim", "whole"),
        default="per_dim",
        help="Eq. 4 Pearson form",
    )
    p.add_argument(
        "--gqa-mode",
        choices=GQA_MODES,
        default="auto",
        help="prune query heads per group or KV groups",
    )
    p.add_argument("--no-greedy", action="store_true", help="ablation: skip the greedy head search")
    p.add_argument(
        "--no-feature-space", action="store_true", help="ablation: magnitude instead of Eq. 5-7"
    )
    p.add_argument(
        "--no-regression", action="store_true", help="ablation: skip the Eq. 9-10 recovery"
    )
    p.add_argument(
        "--uniform", action="store_true", help="ablation: the same ratio on every pruned layer"
    )
    p.add_argument(
        "--keep-lowest",
        type=float,
        default=0.0,
        help="LoRAP heuristic: protect this share of lowest channels",
    )
    p.add_argument("--batch-size", type=int, default=8, help="calibration windows per forward")
    p.add_argument(
        "--round-to",
        type=positive_int,
        default=1,
        help="keep a multiple of N MLP channels in each pruned layer (1: no rounding)",
    )
    add_device(p)
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32", help="model dtype")
    add_data_dir(p)
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def run(args: argparse.Namespace) -> int:
    from slimllm.io import save_pruned

    if args.out.exists() and any(args.out.iterdir()) and not args.overwrite:
        raise SystemExit(
            f"slimllm prune: --out {args.out} exists and is not empty (pass --overwrite)"
        )
    config = PruneConfig(
        ratio=args.ratio,
        ratio_of=args.ratio_of,
        alpha=args.alpha,
        num_pruned_layers=args.layers,
        max_layer_ratio=args.max_layer_ratio,
        calib_samples=args.calib_samples,
        calib_seq_len=args.calib_seq_len,
        seed=args.seed,
        head_reduction=args.head_reduction,
        gqa_mode=args.gqa_mode,
        greedy_search=not args.no_greedy,
        feature_space=not args.no_feature_space,
        regression=not args.no_regression,
        uniform=args.uniform,
        keep_lowest_fraction=args.keep_lowest,
        batch_size=args.batch_size,
        round_channels_to=args.round_to,
    )
    config.validate()
    device = device_or_default(args.device)
    # The model stays on the CPU; each layer visits `device` during calibration.
    model, tokenizer = load_model(args.model, dtype=args.dtype, device="cpu")
    report = prune(model, tokenizer, config, device=device, data_dir=args.data_dir, log=print)
    record = {**report.to_dict(), "model": args.model, "dtype": args.dtype, "device": device}
    out = save_pruned(model, tokenizer, args.out, record, overwrite=args.overwrite)
    print(summary_table(report))
    print(f"saved to {out}")
    return 0
