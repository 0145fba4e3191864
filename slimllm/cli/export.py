"""`slimllm export DIR --gguf OUT.gguf`: a pruned or dense model folder as a llama.cpp GGUF."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from slimllm.cli.common import HelpFormatter
from slimllm.deploy.gguf import GGUF_TYPES, Q8_BLOCK, export_gguf


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="export a model folder to GGUF for llama.cpp",
        formatter_class=HelpFormatter,
        description="Write a pruned (or dense) LLaMA-family model folder as a GGUF file of "
        "llama.cpp's deci architecture, which keeps each layer's own head counts and MLP width.",
    )
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
    result = export_gguf(args.folder, args.gguf, type=args.type, overwrite=args.overwrite)
    print(f"wrote {result.path} ({result.type}, {result.tensors} tensors, {result.bytes:,} bytes)")
    if result.kept_f16:
        print(f"kept in f16 (rows not a multiple of {Q8_BLOCK}): {', '.join(result.kept_f16)}")
    return 0
