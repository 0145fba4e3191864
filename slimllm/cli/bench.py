"""`slimllm bench DIR [DIR...]`: prefill and decoding latency of pruned models beside dense."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from slimllm.cli import common
from slimllm.cli.common import MODELS_HELP, positive_int
from slimllm.experiments.recipes import load_any
from slimllm.measure.latency import DRIVERS, LatencySpec, measure_latency, table
from slimllm.models.loaders import DEFAULT_MODEL
from slimllm.models.precision import resolve_dtype
from slimllm.util.files import write_json
from slimllm.util.provenance import cpu_info

HELP = "time prefill and decoding against the dense model"
DESCRIPTION = (
    "Prefill (time to first token) and decoding latency as in the paper's "
    "Table 3, all models interleaved in one run, with parameter and FLOP ratios to the "
    "dense model."
)

SPEC = LatencySpec()


def add_parser(sub: Any) -> None:
    p = common.command_parser(sub, "bench", HELP, DESCRIPTION)
    p.add_argument("dirs", nargs="+", type=Path, help="pruned model folders (slimllm prune --out)")
    p.add_argument("--dense", default=DEFAULT_MODEL, help=f"the reference model: {MODELS_HELP}")
    p.add_argument("--repeats", type=positive_int, default=SPEC.repeats, help="timed repeats")
    p.add_argument("--warmup", type=int, default=SPEC.warmup, help="untimed runs per model first")
    p.add_argument("--prefill-len", type=positive_int, default=SPEC.prefill_len)
    p.add_argument("--batch", type=positive_int, default=SPEC.decode_batch, help="decode batch")
    p.add_argument("--new-tokens", type=positive_int, default=SPEC.new_tokens)
    p.add_argument("--prompt-len", type=positive_int, default=SPEC.decode_prompt_len)
    p.add_argument("--driver", choices=DRIVERS, default=SPEC.driver, help="generate or bare loop")
    common.add_dtype(p, "auto: bfloat16 on GPUs and AMX CPUs, else float32")
    common.add_json(p, "also write the result to this file")
    common.add_device(p)


def _check_dir(path: Path) -> None:
    config = path / "config.json"
    if not config.is_file():
        raise ValueError(f"{path} is not a model folder: it has no config.json")
    if "slimllm" not in json.loads(config.read_text()):
        raise ValueError(f"{path} is not a slimllm pruned model (config.json has no slimllm entry)")


def run(args: argparse.Namespace) -> int:
    if args.warmup < 0:
        raise ValueError(f"--warmup must be >= 0, got {args.warmup}")
    for path in args.dirs:
        _check_dir(path)
    device = common.device_or_default(args.device)
    dtype, reason = resolve_dtype(args.dtype, device)
    models = {"dense": load_any(args.dense, dtype, device)[0]}
    for path in args.dirs:
        models[str(path)] = load_any(str(path), dtype, device)[0]
    spec = LatencySpec(
        prefill_len=args.prefill_len,
        decode_batch=args.batch,
        new_tokens=args.new_tokens,
        decode_prompt_len=args.prompt_len,
        repeats=args.repeats,
        warmup=args.warmup,
        driver=args.driver,
    )
    result = measure_latency(models, spec)
    result.update(dtype=dtype, dtype_reason=reason, device=device, threads=torch.get_num_threads())
    print(table(result))
    print(f"dtype {dtype} ({reason}); {torch.get_num_threads()} threads; {cpu_info()['model']}")
    if args.json is not None:
        write_json(args.json, result)
    return 0
