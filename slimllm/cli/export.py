"""`slimllm export DIR --gguf OUT.gguf`: a pruned or dense model folder as a llama.cpp GGUF."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from slimllm.cli import common
from slimllm.deploy.gguf import GGUF_TYPES, Q8_BLOCK, export_gguf

HELP = "export a model folder to GGUF for llama.cpp"
DESCRIPTION = (
    "Write a pruned (or dense) LLaMA-family model folder as a GGUF file of llama.cpp's deci "
    "architecture, which keeps each layer's own head counts and MLP width."
)


def add_parser(sub: Any) -> None:
    p = common.command_parser(sub, "export", HELP, DESCRIPTION)
    p.add_argument("folder", type=Path, help="a folder written by `slimllm prune`, or a dense one")
    p.add_argument("--gguf", type=Path, required=True, help="the .gguf file to write")
    p.add_argument(
        "--type",
        choices=GGUF_TYPES,
        default="f32",
        help=f"weight type; under q8_0, matrices whose rows are not a multiple of {Q8_BLOCK} "
        "stay f16 (default: f32)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace --gguf if it exists")


def run(args: argparse.Namespace) -> int:
    if not args.folder.is_dir():
        raise FileNotFoundError(f"{args.folder} is not a directory")
    common.model_config(str(args.folder), "FOLDER")
    common.check_writable(args.gguf, "--gguf", is_folder=False)
    if args.gguf.exists() and not args.overwrite:
        raise FileExistsError(f"--gguf {args.gguf} exists (pass --overwrite)")
    result = export_gguf(args.folder, args.gguf, type=args.type, overwrite=args.overwrite)
    print(f"wrote {result.path} ({result.type}, {result.tensors} tensors, {result.bytes:,} bytes)")
    if result.kept_f16:
        print(f"kept in f16 (rows not a multiple of {Q8_BLOCK}): {', '.join(result.kept_f16)}")
    return 0


def left_as_it_was(args: argparse.Namespace) -> str:
    return f"--gguf {args.gguf} left as it was"
