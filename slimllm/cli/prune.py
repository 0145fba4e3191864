"""`slimllm prune MODEL --ratio R --out DIR`: prune heads and MLP channels, save the model."""

from __future__ import annotations

import argparse
from typing import Any

from slimllm.cli import common
from slimllm.cli.common import MODELS_HELP, fraction, in_range, positive_int, ratio
from slimllm.data.sources import CALIBRATION_SETS
from slimllm.experiments.recipes import pruned
from slimllm.method.config import MAX_ALPHA, PruneConfig
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
    p.add_argument(
        "--batch-size", type=positive_int, default=8, help="calibration windows per forward"
    )
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
    common.add_results_dir(p)


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
        type=in_range(f"in (0, {MAX_ALPHA:g}]", lambda v: 0 < v <= MAX_ALPHA),
        default=None,
        help="Eq. 11 temperature (default: 10 below 35%%, else 7)",
    )
    p.add_argument(
        "--layers",
        type=positive_int,
        default=None,
        help="number of layers to prune, the most similar ones (default: 26/32 or 30/32 of them)",
    )
    p.add_argument(
        "--max-layer-ratio", type=fraction, default=0.9, help="cap on any one layer's ratio"
    )


def _add_calibration_options(p: argparse.ArgumentParser) -> None:
    """The calibration windows: how many, how long, from which corpus, sampled with which seed."""
    p.add_argument(
        "--calib-samples",
        type=positive_int,
        default=None,
        help="calibration windows (default: 32; llm-pruner 10)",
    )
    p.add_argument(
        "--calib-seq-len",
        type=positive_int,
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
        type=ratio,
        default=0.0,
        help="LoRAP heuristic: protect this share of lowest channels",
    )


#: PruneConfig fields only SlimLLM reads (and lorap-ffn, SlimLLM with LoRAP's channel score),
#: by the option that sets them: a baseline would ignore them.
SLIMLLM_ONLY = {
    "alpha": "--alpha",
    "num_pruned_layers": "--layers",
    "head_reduction": "--head-reduction",
    "gqa_mode": "--gqa-mode",
    "greedy_search": "--no-greedy",
    "feature_space": "--no-feature-space",
    "regression": "--no-regression",
    "uniform": "--uniform",
    "keep_lowest_fraction": "--keep-lowest",
    "round_channels_to": "--round-to",
}


#: Fields a method that reads no calibration data (magnitude-sp, random) would ignore.
CALIBRATION = {
    "calib_samples": "--calib-samples",
    "calib_seq_len": "--calib-seq-len",
    "calib_dataset": "--calib-data",
    "batch_size": "--batch-size",
}


def _config(args: argparse.Namespace) -> PruneConfig:
    """The run's PruneConfig; options the method would ignore are refused."""
    reads_data = OWN_CALIBRATION[args.method] is not None
    if args.calib_data == "own" and not reads_data:
        raise ValueError(f"--calib-data own: {args.method} reads no calibration data")
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
    unused = {} if args.method in ("slimllm", "lorap-ffn") else dict(SLIMLLM_ONLY)
    if not reads_data:
        unused.update(CALIBRATION)
    default = method_config(args.method)
    given = [
        flag for name, flag in unused.items() if getattr(config, name) != getattr(default, name)
    ]
    if given:
        raise ValueError(f"{', '.join(given)} does not apply to --method {args.method}")
    config.validate()
    return config


def _check_model(args: argparse.Namespace) -> None:
    """MODEL is a dense model, --out a place that does not hold it."""
    saved = common.model_config(args.model)
    if saved is not None and "slimllm" in saved:
        base = saved["slimllm"].get("record", {}).get("recipe", {}).get("base", "its base model")
        raise ValueError(
            f"MODEL {args.model} is already pruned (saved by slimllm); prune {base} instead"
        )
    common.check_out(args, args.model)


def run(args: argparse.Namespace) -> int:
    config = _config(args)
    _check_model(args)
    store = common.results_store(args)
    device = common.device_or_default(args.device)
    if OWN_CALIBRATION[args.method] is not None:
        common.check_positions(args.model, config.calib_seq_len, "--calib-seq-len")
    # The model stays on the CPU; each layer visits `device` during calibration.
    model, tokenizer = load_model(args.model, dtype=args.dtype, device="cpu")
    layers = model.config.num_hidden_layers
    if config.num_pruned_layers is not None and config.num_pruned_layers > layers:
        raise ValueError(f"--layers {config.num_pruned_layers}: the model has {layers} layers")
    report = prune_with(
        args.method, model, tokenizer, config, device=device, data_dir=args.data_dir, log=print
    )
    recipe = pruned(config, base=args.model, method=args.method, prune_dtype=args.dtype)
    record = {**report.to_dict(), "model": args.model, "dtype": args.dtype, "device": device}
    out = save_pruned(model, tokenizer, args.out, {**record, "recipe": recipe}, args.overwrite)
    stored = store.put(
        "prune", {"model": recipe}, record, {"device": device}, report.seconds, replace=args.replace
    )
    print(summary_table(report))
    print(f"saved to {out}; record {stored.path}, under {common.records_note(store)}")
    return 0


def left_as_it_was(args: argparse.Namespace) -> str:
    return f"--out {args.out} left as it was, no record written"
