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
)
from slimllm.data.sources import CALIBRATION_SETS
from slimllm.experiments.recipes import pruned
from slimllm.experiments.store import Store
from slimllm.method.config import PruneConfig
from slimllm.method.plan import GQA_MODES
from slimllm.method.report import summary_table
from slimllm.models.io import save_pruned
from slimllm.models.loaders import DEFAULT_MODEL, DTYPES, load_model
from slimllm.peers.registry import METHODS, OWN_CALIBRATION, method_config, prune_with


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "prune",
        help="prune a model and save it",
        formatter_class=HelpFormatter,
        description="Prune heads and MLP channels with SlimLLM (or a baseline) and save the "
        "smaller model.",
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
        "--method",
        choices=METHODS,
        default="slimllm",
        help="pruning method (see slimllm.peers.registry; the SlimLLM options below apply to "
        "slimllm and lorap-ffn)",
    )
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
    p.add_argument(
        "--calib-samples",
        type=int,
        default=None,
        help="calibration windows (default: 32; llm-pruner 10)",
    )
    p.add_argument(
        "--calib-seq-len",
        type=int,
        default=None,
        help="tokens per calibration window (default: 128; llm-pruner 64)",
    )
    p.add_argument(
        "--calib-data",
        choices=(*CALIBRATION_SETS, "own"),
        default=PruneConfig.calib_dataset,
        help="calibration corpus; own: the method's authors' (flap: wikitext2-train, "
        "wanda-sp: c4; not in shared/data, so offline their file must be added)",
    )
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
        default=PruneConfig.gqa_mode,
        help="GQA: query heads per group, whole KV groups, the closer parameter count (auto) or "
        "the better Eq. 4 similarity (score, the default: best on SmolLM2 at 20 %% and 50 %%)",
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

    if args.out.exists() and any(args.out.iterdir()) and not args.overwrite:
        raise SystemExit(
            f"slimllm prune: --out {args.out} exists and is not empty (pass --overwrite)"
        )
    options = {
        "calib_samples": args.calib_samples,
        "calib_seq_len": args.calib_seq_len,
        "feature_space": False if args.method == "lorap-ffn" else not args.no_feature_space,
        "calib_dataset": (
            OWN_CALIBRATION[args.method] if args.calib_data == "own" else args.calib_data
        ),
    }
    config = method_config(
        args.method,
        **{k: v for k, v in options.items() if v is not None},
        ratio=args.ratio,
        ratio_of=args.ratio_of,
        alpha=args.alpha,
        num_pruned_layers=args.layers,
        max_layer_ratio=args.max_layer_ratio,
        seed=args.seed,
        head_reduction=args.head_reduction,
        gqa_mode=args.gqa_mode,
        greedy_search=not args.no_greedy,
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
    report = prune_with(
        args.method, model, tokenizer, config, device=device, data_dir=args.data_dir, log=print
    )
    recipe = pruned(config, base=args.model, method=args.method, prune_dtype=args.dtype)
    record = {**report.to_dict(), "model": args.model, "dtype": args.dtype, "device": device}
    out = save_pruned(model, tokenizer, args.out, {**record, "recipe": recipe}, args.overwrite)
    stored = Store().put("prune", {"model": recipe}, record, {"device": device}, report.seconds)
    print(summary_table(report))
    print(f"saved to {out}; record {stored.path}")
    return 0
