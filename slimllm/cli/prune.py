"""`slimllm prune MODEL --ratio R --out DIR`: prune heads and MLP channels, save the model."""

from __future__ import annotations

import argparse
from typing import Any

from slimllm.cli import common
from slimllm.cli.common import MODELS_HELP, positive, positive_int, ratio
from slimllm.data.sources import CALIBRATION_SETS
from slimllm.experiments.recipes import pruned
from slimllm.experiments.store import Store
from slimllm.method.config import PruneConfig
from slimllm.method.heads import REDUCTIONS
from slimllm.method.plan import GQA_MODES
from slimllm.method.report import summary_table
from slimllm.models.io import save_pruned
from slimllm.models.loaders import DEFAULT_MODEL, DTYPES, load_model
from slimllm.peers.registry import METHODS, OWN_CALIBRATION, method_config, prune_with

HELP = "prune a model and save it"
DESCRIPTION = (
    "Prune heads and MLP channels with SlimLLM (or a baseline) and save the smaller model."
)


def add_parser(sub: Any) -> None:
    p = common.command_parser(sub, "prune", HELP, DESCRIPTION)
    common.add_model(p, f"{MODELS_HELP}, a local directory or a hub id", default=DEFAULT_MODEL)
    p.add_argument(
        "--ratio", type=ratio, required=True, help="fraction of parameters to remove, in [0, 1)"
    )
    common.add_out(p, "pruned")
    _add_method_options(p)
    _add_calibration_options(p)
    _add_search_options(p)
    p.add_argument("--batch-size", type=int, default=8, help="calibration windows per forward")
    p.add_argument(
        "--round-to",
        type=positive_int,
        default=1,
        help="keep a multiple of N MLP channels in each pruned layer (1: no rounding)",
    )
    common.add_device(p)
    common.add_dtype(p, "model dtype", choices=sorted(DTYPES), default="float32")
    common.add_data_dir(p)
    common.add_overwrite(p)


def _add_method_options(p: argparse.ArgumentParser) -> None:
    """--method and how much each layer loses: --ratio-of, --alpha, --layers, --max-layer-ratio."""
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


def _add_calibration_options(p: argparse.ArgumentParser) -> None:
    """The calibration windows: how many, how long, from which corpus, sampled with which seed."""
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


def _add_search_options(p: argparse.ArgumentParser) -> None:
    """How heads and channels are chosen, and the paper's ablations of it."""
    p.add_argument(
        "--head-reduction",
        choices=REDUCTIONS,
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


def run(args: argparse.Namespace) -> int:
    taken = common.out_taken(args)
    if taken:
        raise SystemExit(f"slimllm prune: {taken}")
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
        **common.config_values(
            args,
            "ratio",
            "ratio_of",
            "alpha",
            "max_layer_ratio",
            "seed",
            "head_reduction",
            "gqa_mode",
            "uniform",
            "batch_size",
        ),
        num_pruned_layers=args.layers,
        greedy_search=not args.no_greedy,
        regression=not args.no_regression,
        keep_lowest_fraction=args.keep_lowest,
        round_channels_to=args.round_to,
    )
    config.validate()
    device = common.device_or_default(args.device)
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
