"""Command line: `slimllm prune MODEL --ratio R --out DIR` and `slimllm eval DIR --ppl ...`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from slimllm.data import DATA_ENV
from slimllm.evaluate import PROTOCOLS, perplexity
from slimllm.models import DEFAULT_MODEL, DTYPES, EMBEDDED, TINY, load_model
from slimllm.plan import GQA_MODES
from slimllm.pruner import PruneConfig, PruneReport, prune

DATASETS = ("wikitext2", "ptb", "ptb-valid")


def _ratio(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _datasets(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in DATASETS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"choose from {', '.join(DATASETS)} (comma-separated), got {text!r}"
        )
    return names


def build_parser() -> argparse.ArgumentParser:
    models = ", ".join([*EMBEDDED, *TINY])
    parser = argparse.ArgumentParser(
        prog="slimllm",
        description="SlimLLM structured pruning (Guo et al., ICML 2025), offline-first.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "prune",
        help="prune a model and save it",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Prune heads and MLP channels with SlimLLM and save the smaller model.",
    )
    p.add_argument(
        "model", nargs="?", default=DEFAULT_MODEL, help=f"{models}, a local directory or a hub id"
    )
    p.add_argument(
        "--ratio", type=_ratio, required=True, help="fraction of parameters to remove, in [0, 1)"
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
        type=_positive,
        default=None,
        help="Eq. 11 temperature (default: 10 below 35%%, else 7)",
    )
    p.add_argument(
        "--layers", type=int, default=None, help="number of layers to prune, the most similar ones"
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
        "--device",
        default=None,
        help="where each layer runs (default: cuda if available, else cpu)",
    )
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32", help="model dtype")
    p.add_argument(
        "--data-dir", default=None, help=f"data directory (default: ${DATA_ENV}, else the hub)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")

    e = sub.add_parser(
        "eval",
        help="perplexity of a pruned or dense model",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Perplexity under a named protocol, of a pruned directory or a model.",
    )
    e.add_argument("model", help=f"a pruned directory, {models}, a local directory or a hub id")
    e.add_argument(
        "--ppl",
        type=_datasets,
        default=["wikitext2", "ptb"],
        help=f"comma-separated: {', '.join(DATASETS)}",
    )
    e.add_argument(
        "--protocol", choices=sorted(PROTOCOLS), default="lineage-128", help="window protocol"
    )
    e.add_argument(
        "--max-windows",
        type=int,
        default=None,
        help="evaluate only the first windows (quick check)",
    )
    e.add_argument("--batch-size", type=int, default=8, help="windows per forward")
    e.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    e.add_argument("--dtype", choices=sorted(DTYPES), default="float32", help="model dtype")
    e.add_argument(
        "--data-dir", default=None, help=f"data directory (default: ${DATA_ENV}, else the hub)"
    )
    e.add_argument(
        "--json", type=Path, default=None, help="also write the results with their records here"
    )
    return parser


def _device(name: str | None) -> str:
    return name or ("cuda" if torch.cuda.is_available() else "cpu")


def summary_table(report: PruneReport) -> str:
    """Per-layer ratios, heads and channels kept, then totals and time."""
    lines = [
        f"{'layer':>5} {'cos':>6} {'ratio':>6} {'heads':>7} {'channels':>11} {'mode':>6} "
        f"{'search':>15}"
    ]
    for r in report.layers:
        search = "" if r.search_final is None else f"{r.search_initial:.3f}->{r.search_final:.3f}"
        lines.append(
            f"{r.index:>5} {r.similarity:>6.3f} {r.ratio:>6.3f} "
            f"{len(r.heads_kept):>3}/{r.heads_before:<3}"
            f" {r.channels_kept:>5}/{r.channels_before:<5} {r.attention_mode:>6} {search:>15}"
        )
    lines.append(
        f"parameters {report.params_before:,} -> {report.params_after:,} "
        f"(decoder {report.decoder_params_before:,} -> {report.decoder_params_after:,}); "
        f"target {report.target:.1%} of the {report.config['ratio_of']}, "
        f"achieved {report.achieved:.2%}; "
        f"{report.seconds:.1f} s"
    )
    return "\n".join(lines)


def _load_any(name: str, dtype: str, device: str) -> tuple[Any, Any]:
    config = Path(name) / "config.json"
    if config.is_file() and "slimllm" in json.loads(config.read_text()):
        from slimllm.io import load_pruned

        return load_pruned(name, dtype=DTYPES[dtype], device=device)
    return load_model(name, dtype=dtype, device=device)


def cmd_prune(args: argparse.Namespace) -> int:
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
    )
    config.validate()
    device = _device(args.device)
    # The model stays on the CPU; each layer visits `device` during calibration.
    model, tokenizer = load_model(args.model, dtype=args.dtype, device="cpu")
    report = prune(model, tokenizer, config, device=device, data_dir=args.data_dir, log=print)
    record = {**report.to_dict(), "model": args.model, "dtype": args.dtype, "device": device}
    out = save_pruned(model, tokenizer, args.out, record, overwrite=args.overwrite)
    print(summary_table(report))
    print(f"saved to {out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    device = _device(args.device)
    model, tokenizer = _load_any(args.model, args.dtype, device)
    results = []
    print(f"{'dataset':>10} {'ppl':>10} {'95% CI':>21} {'windows':>8} {'seconds':>8}")
    for name in args.ppl:
        res = perplexity(
            model, tokenizer, name, args.protocol, args.max_windows, args.batch_size, args.data_dir
        )
        results.append(res.to_dict())
        ci = f"[{res.ci_low:.2f}, {res.ci_high:.2f}]"
        print(f"{name:>10} {res.ppl:>10.3f} {ci:>21} {res.n_windows:>8} {res.seconds:>8.1f}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"model": args.model, "results": results}, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return cmd_prune(args) if args.command == "prune" else cmd_eval(args)
    except (ValueError, FileExistsError, RuntimeError) as err:
        print(f"slimllm {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
