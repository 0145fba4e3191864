"""`slimllm bench DIR [DIR...]`: prefill and decoding latency of pruned models beside dense."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel

from slimllm.cli import common
from slimllm.cli.common import MODELS_HELP, positive_int
from slimllm.experiments.recipes import load_any
from slimllm.measure.latency import DRIVERS, LatencySpec, measure_latency, table
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
    p.add_argument(
        "--dense",
        default=None,
        help=f"the reference model: {MODELS_HELP} or a folder (default: the base model the "
        "folders' recipes name)",
    )
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


#: config.json fields a pruned model keeps from its base: the dense reference must share them.
ARCHITECTURE = (
    "model_type",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "intermediate_size",
    "vocab_size",
)


def _check_dir(path: Path) -> dict[str, Any]:
    """The config.json of a pruned folder."""
    config = common.model_config(str(path), "DIR")
    if config is None:
        raise ValueError(f"{path} is not a model folder: it has no config.json")
    if "slimllm" not in config:
        raise ValueError(f"{path} is not a slimllm pruned model (config.json has no slimllm entry)")
    return config


def _dense_name(args: argparse.Namespace, configs: dict[Path, dict[str, Any]]) -> str:
    """--dense, else the one base model the folders' recipes name."""
    if args.dense is not None:
        common.model_config(args.dense, "--dense")
        return str(args.dense)
    bases = {}
    for path, config in configs.items():
        recipe = config["slimllm"].get("record", {}).get("recipe")
        if not isinstance(recipe, dict) or "base" not in recipe:
            raise ValueError(f"{path} has no recipe naming its base model; pass --dense")
        bases[recipe["base"]] = path
    if len(bases) > 1:
        raise ValueError(
            f"the folders come from different bases ({', '.join(bases)}); pass --dense"
        )
    return next(iter(bases))


def _check_architecture(
    dense: PreTrainedModel, name: str, configs: dict[Path, dict[str, Any]]
) -> None:
    """A reference of another architecture makes the ratios meaningless (a tiny model against
    SmolLM2 had a parameter ratio of 0.001)."""
    for path, config in configs.items():
        differ = [
            f"{field} {getattr(dense.config, field, None)} vs {config.get(field)}"
            for field in ARCHITECTURE
            if getattr(dense.config, field, None) != config.get(field)
        ]
        if differ:
            raise ValueError(
                f"--dense {name} is not the architecture {path} was pruned from: "
                + "; ".join(differ)
            )


def run(args: argparse.Namespace) -> int:
    if args.warmup < 0:
        raise ValueError(f"--warmup must be >= 0, got {args.warmup}")
    configs = {path: _check_dir(path) for path in args.dirs}
    dense_name = _dense_name(args, configs)
    common.check_json(args)
    device = common.device_or_default(args.device)
    dtype, reason = resolve_dtype(args.dtype, device)
    common.check_positions(dense_name, args.prefill_len, "--prefill-len")
    common.check_positions(
        dense_name, args.prompt_len + args.new_tokens, "--prompt-len + --new-tokens"
    )
    dense = load_any(dense_name, dtype, device)[0]
    _check_architecture(dense, dense_name, configs)
    models = {"dense": dense}
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
    print(f"dense reference: {dense_name}")
    print(f"dtype {dtype} ({reason}); {torch.get_num_threads()} threads; {cpu_info()['model']}")
    if args.json is not None:
        write_json(args.json, result)
    return 0


def left_as_it_was(args: argparse.Namespace) -> str:
    return f"--json {args.json} left as it was" if args.json is not None else "nothing written"
