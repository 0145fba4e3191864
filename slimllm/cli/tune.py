"""`slimllm tune DIR --out DIR2 [--preset cpu|paper]`: LoRA recovery, merged and saved."""

from __future__ import annotations

import argparse
import textwrap
from dataclasses import asdict
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
)
from slimllm.data.alpaca import load_records
from slimllm.experiments.recipes import load_any
from slimllm.models.io import save_pruned
from slimllm.models.loaders import EMBEDDED, TINY
from slimllm.tuning.lora import AUTOCAST_CHOICES, PRESETS, preset, tune


def _presets_text() -> str:
    paper = asdict(PRESETS["paper"])
    lines = ["Options left out take the preset's value. Presets:"]
    for name, config in PRESETS.items():
        values = asdict(config)
        shown = values if name == "paper" else {k: v for k, v in values.items() if v != paper[k]}
        text = ", ".join(f"{k}={v}" for k, v in shown.items())
        lead = f"  {name}: " if name == "paper" else f"  {name}: as paper but "
        lines += textwrap.wrap(text, 96, initial_indent=lead, subsequent_indent="    ")
    return "\n".join(lines)


class _Formatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Keeps the preset table's line breaks."""


def add_parser(sub: Any) -> None:
    t = sub.add_parser(
        "tune",
        help="recover a pruned model with LoRA and save it",
        formatter_class=_Formatter,
        description="LoRA recovery fine-tuning on alpaca-cleaned (LLM-Pruner's recipe), the "
        "LoRA merged back into the weights, saved like `slimllm prune` saves.",
        epilog=_presets_text(),
    )
    t.add_argument("model", help=f"a pruned directory, {MODELS_HELP} or a model directory")
    t.add_argument("--out", type=Path, required=True, help="directory to write the tuned model to")
    t.add_argument("--preset", choices=sorted(PRESETS), default="cpu", help="starting values")
    t.add_argument("--max-steps", type=positive_int, default=None, help="optimiser steps budget")
    t.add_argument("--lr", type=positive, default=None, help="peak learning rate (paper: 1e-4)")
    t.add_argument("--epochs", type=positive, default=None, help="passes over the training split")
    t.add_argument("--batch-size", type=positive_int, default=None, help="examples per step")
    t.add_argument(
        "--micro-batch-size", type=positive_int, default=None, help="examples per forward"
    )
    t.add_argument("--warmup-steps", type=int, default=None, help="linear warm-up steps")
    t.add_argument("--lora-r", type=positive_int, default=None, help="LoRA rank")
    t.add_argument("--lora-alpha", type=positive_int, default=None, help="LoRA alpha")
    t.add_argument("--lora-dropout", type=float, default=None, help="LoRA dropout")
    t.add_argument("--cutoff-len", type=positive_int, default=None, help="tokens per example")
    t.add_argument("--val-size", type=positive_int, default=None, help="held-out records")
    t.add_argument("--eval-every", type=positive_int, default=None, help="validation every N steps")
    t.add_argument(
        "--train-on-inputs",
        action="store_true",
        help="loss on prompt and response (default: response only, as LLM-Pruner)",
    )
    t.add_argument(
        "--autocast", choices=AUTOCAST_CHOICES, default=None, help="compute dtype of the matmuls"
    )
    t.add_argument("--seed", type=int, default=None, help="LoRA init, example order, dropout")
    t.add_argument(
        "--data",
        default=None,
        help="alpaca-style JSON/JSONL file (default: alpaca-cleaned from the data directory)",
    )
    t.add_argument("--max-records", type=positive_int, default=None, help="use the first N records")
    add_data_dir(t)
    add_device(t)
    t.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def _check_model(name: str) -> None:
    folder = Path(name)
    if name in EMBEDDED or name in TINY:
        return
    if not folder.is_dir():
        raise ValueError(f"model {name!r} is not a directory nor one of {MODELS_HELP}")
    if not (folder / "config.json").is_file():
        raise ValueError(f"{name} is not a model directory: it has no config.json")


def run(args: argparse.Namespace) -> int:

    if args.out.exists() and any(args.out.iterdir()) and not args.overwrite:
        raise ValueError(f"--out {args.out} exists and is not empty (pass --overwrite)")
    config = preset(
        args.preset,
        max_steps=args.max_steps,
        learning_rate=args.lr,
        epochs=args.epochs,
        batch_size=args.batch_size,
        micro_batch_size=args.micro_batch_size,
        warmup_steps=args.warmup_steps,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        cutoff_len=args.cutoff_len,
        val_size=args.val_size,
        eval_every=args.eval_every,
        train_on_inputs=args.train_on_inputs or None,
        autocast=args.autocast,
        seed=args.seed,
        data_file=args.data,
        max_records=args.max_records,
    )
    config.validate()
    _check_model(args.model)
    load_records(config.data_file, args.data_dir)  # bad data fails before the model loads
    device = device_or_default(args.device)
    model, tokenizer = load_any(args.model, "float32", device)
    slim = getattr(model.config, "slimllm", None)
    record = dict(slim["record"]) if slim else {"model": args.model}
    model, report = tune(model, tokenizer, config, args.data_dir, device, log=print)
    if "tune" in record:
        record["earlier_tunes"] = [*record.get("earlier_tunes", []), record["tune"]]
    record["tune"] = report.to_dict()
    out = save_pruned(model, tokenizer, args.out, record, overwrite=args.overwrite)
    first, last = report.val_loss[0][1], report.val_loss[-1][1]
    print(
        f"{report.steps} steps ({report.examples_seen} examples, {report.epochs_seen:.2f} epochs "
        f"of {report.data['train_examples']}) in {report.seconds:.0f} s; validation loss "
        f"{first:.4f} -> {last:.4f}"
    )
    print(f"saved to {out}")
    return 0
