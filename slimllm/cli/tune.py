"""`slimllm tune DIR --out DIR2 [--preset cpu|paper]`: LoRA recovery, merged and saved."""

from __future__ import annotations

import argparse
import textwrap
from dataclasses import asdict
from pathlib import Path
from typing import Any

from slimllm.cli import common
from slimllm.cli.common import MODELS_HELP, nonnegative_int, positive, positive_int, ratio
from slimllm.data.alpaca import load_records
from slimllm.experiments.recipes import load_any, of_folder, tuned
from slimllm.models.io import save_pruned
from slimllm.models.loaders import EMBEDDED, TINY
from slimllm.tuning.lora import AUTOCAST_CHOICES, PRESETS, preset, tune

HELP = "recover a pruned model with LoRA and save it"
DESCRIPTION = (
    "LoRA recovery fine-tuning on alpaca-cleaned (LLM-Pruner's recipe), the LoRA merged back "
    "into the weights, saved like `slimllm prune` saves."
)


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


class _Formatter(common.HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Keeps the preset table's line breaks."""


def add_parser(sub: Any) -> None:
    t = common.command_parser(
        sub, "tune", HELP, DESCRIPTION, formatter_class=_Formatter, epilog=_presets_text()
    )
    common.add_model(t, f"a pruned directory, {MODELS_HELP} or a model directory")
    common.add_out(t, "tuned")
    t.add_argument("--preset", choices=sorted(PRESETS), default="cpu", help="starting values")
    t.add_argument("--max-steps", type=positive_int, default=None, help="optimiser steps budget")
    t.add_argument("--lr", type=positive, default=None, help="peak learning rate (paper: 1e-4)")
    t.add_argument("--epochs", type=positive, default=None, help="passes over the training split")
    t.add_argument("--batch-size", type=positive_int, default=None, help="examples per step")
    t.add_argument(
        "--micro-batch-size", type=positive_int, default=None, help="examples per forward"
    )
    t.add_argument(
        "--warmup-steps", type=nonnegative_int, default=None, help="linear warm-up steps"
    )
    t.add_argument("--lora-r", type=positive_int, default=None, help="LoRA rank")
    t.add_argument("--lora-alpha", type=positive_int, default=None, help="LoRA alpha")
    t.add_argument("--lora-dropout", type=ratio, default=None, help="LoRA dropout")
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
    common.add_data_dir(t)
    common.add_device(t)
    common.add_overwrite(t)


def _check_model(name: str) -> None:
    folder = Path(name)
    if name in EMBEDDED or name in TINY:
        return
    if not folder.is_dir():
        raise ValueError(f"model {name!r} is not a directory nor one of {MODELS_HELP}")
    if not (folder / "config.json").is_file():
        raise ValueError(f"{name} is not a model directory: it has no config.json")


def run(args: argparse.Namespace) -> int:
    config = preset(
        args.preset,
        **common.config_values(
            args,
            "max_steps",
            "epochs",
            "batch_size",
            "micro_batch_size",
            "warmup_steps",
            "lora_r",
            "lora_alpha",
            "lora_dropout",
            "cutoff_len",
            "val_size",
            "eval_every",
            "autocast",
            "seed",
            "max_records",
        ),
        learning_rate=args.lr,
        train_on_inputs=args.train_on_inputs or None,
        data_file=args.data,
    )
    config.validate()
    _check_model(args.model)
    common.model_config(args.model)
    untuned = of_folder(args.model) if Path(args.model).is_dir() else {"base": args.model}
    if "tune" in untuned:
        raise ValueError(
            f"MODEL {args.model} is already tuned and a recipe holds one tuning run; tune the "
            "model it was tuned from"
        )
    common.check_out(args, args.model)
    load_records(config.data_file, args.data_dir)  # bad data fails before the model loads
    device = common.device_or_default(args.device)
    common.check_positions(args.model, config.cutoff_len, "--cutoff-len")
    model, tokenizer = load_any(args.model, "float32", device)
    slim = getattr(model.config, "slimllm", None)
    record = dict(slim["record"]) if slim else {"model": args.model}
    model, report = tune(model, tokenizer, config, data_dir=args.data_dir, device=device, log=print)
    # The tuned recipe keys the records of the saved folder apart from the untuned model's.
    record.update(tune=report.to_dict(), recipe=tuned(untuned, config))
    out = save_pruned(model, tokenizer, args.out, record, overwrite=args.overwrite)
    first, last = report.val_loss[0][1], report.val_loss[-1][1]
    print(
        f"{report.steps} steps ({report.examples_seen} examples, {report.epochs_seen:.2f} epochs "
        f"of {report.data['train_examples']}) in {report.seconds:.0f} s; validation loss "
        f"{first:.4f} -> {last:.4f}"
    )
    print(f"saved to {out}")
    return 0


def left_as_it_was(args: argparse.Namespace) -> str:
    return f"--out {args.out} left as it was"
