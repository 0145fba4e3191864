"""LLaMA-7B and -13B shapes pruned from their shards on this machine: time and peak memory.

A seeded random model with huggyllama/llama-7b's config (or llama-13b's) is written once, in
bfloat16, as sharded safetensors (one shard per decoder layer) under the cache folder
($SLIMLLM_CACHE_DIR, default ~/.cache/slimllm, then random/<shape>). A fresh subprocess prunes it
at 20 % with slimllm.method.streaming_prune.prune_checkpoint: each decoder layer is read from
the shards when a walk reaches it and freed after, the pruning walk writing the pruned layer as
the next output shard, so the model is never whole in memory. The "prune_scale" record holds the
wall time, the CPU time (on the shared CPU the wall time is mostly the other jobs'), the load
average at the start and the end, the process's peak resident memory against the model's
bfloat16 size and, on a GPU, the peak GPU memory. The weights are random: only time and memory
mean anything here.

The paper's calibration is 32 windows of 128 tokens (the default); `--samples` takes fewer for
a quicker measurement, and the record's configuration says which. The pruned copy is deleted
after the measurement unless `--keep`.

    python benchmarks/prune_scale.py --shape llama-7b
    python benchmarks/prune_scale.py --shape llama-13b --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from slimllm.data.calibration import calibration_corpus_ids
from slimllm.experiments.store import Store
from slimllm.method.config import PruneConfig
from slimllm.method.streaming_prune import prune_checkpoint
from slimllm.models.loaders import byte_tokenizer, cache_dir, parse_dtype
from slimllm.models.shards import write_random_checkpoint

#: huggyllama/llama-7b and llama-13b's config.json, as far as the shapes go.
SHAPES: dict[str, dict[str, Any]] = {
    "llama-7b": {
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
    },
    "llama-13b": {
        "hidden_size": 5120,
        "intermediate_size": 13824,
        "num_hidden_layers": 40,
        "num_attention_heads": 40,
        "num_key_value_heads": 40,
    },
}
COMMON = {
    "vocab_size": 32000,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-6,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "tie_word_embeddings": False,
    "initializer_range": 0.02,
}
SEED = 0
ROOT = Path(__file__).resolve().parents[1]
CODE_COMMIT_ENV = "SLIMLLM_CODE_COMMIT"


def model_config(shape: str) -> LlamaConfig:
    return LlamaConfig(**COMMON, **SHAPES[shape])


def random_model(
    shape: str, dtype: torch.dtype, device: torch.device, layers: int | None = None
) -> tuple[LlamaForCausalLM, dict[str, Any]]:
    """A seeded random model of `shape` built on `device` (`layers` decoder layers if given,
    for checks), and the config as a record names it."""
    config = model_config(shape)
    named = {**COMMON, **SHAPES[shape]}
    if layers is not None:
        config.num_hidden_layers = named["num_hidden_layers"] = layers
    torch.manual_seed(SEED)
    with torch.device(device):
        model = LlamaForCausalLM._from_config(config, dtype=dtype).eval()
    return model, {"random_llama": named, "seed": SEED}


def add_model_arguments(parser: argparse.ArgumentParser, dtype: str, dtype_help: str) -> None:
    """The options of a benchmark that times a random model of a shape on a device."""
    parser.add_argument("--shape", choices=sorted(SHAPES), default="llama-7b")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default=dtype, help=dtype_help)
    parser.add_argument("--layers", type=int, default=None, help="fewer decoder layers (checks)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--replace", action="store_true", help="replace this run's record")


def model_from_arguments(
    args: argparse.Namespace,
) -> tuple[LlamaForCausalLM, dict[str, Any], torch.device]:
    """`random_model` as `add_model_arguments`' options ask, with torch on `--threads`."""
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model, record = random_model(args.shape, parse_dtype(args.dtype), device, args.layers)
    return model, record, device


def source_dir(shape: str) -> Path:
    return cache_dir() / "random" / shape


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """User plus system CPU time of this process: on the shared CPU the wall time depends on
    the other jobs, this much less."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def code_version() -> dict[str, Any]:
    """The commit the pruning process loads and whether the package differs from it. A copy of
    the tree without its .git (a GPU machine handed the working tree) names the commit in
    $SLIMLLM_CODE_COMMIT instead; whether that copy was edited is then unknown (None)."""
    if (ROOT / ".git").exists():
        edited = bool(git("status", "--porcelain", "--", "slimllm", "benchmarks"))
        return {"code": git("rev-parse", "HEAD"), "code_edited": edited}
    commit = os.environ.get(CODE_COMMIT_ENV)
    if not commit:
        sys.exit(f"{ROOT} is not a git checkout: name its commit in ${CODE_COMMIT_ENV}")
    return {"code": commit, "code_edited": None, "code_source": f"${CODE_COMMIT_ENV}"}


def prune_config(samples: int, seq_len: int) -> PruneConfig:
    return PruneConfig(ratio=0.2, calib_samples=samples, calib_seq_len=seq_len)


def ensure_source(shape: str) -> Path:
    """The random checkpoint of `shape`, written on first use."""
    folder = source_dir(shape)
    if not (folder / "config.json").is_file():
        start = time.perf_counter()
        write_random_checkpoint(model_config(shape), folder, torch.bfloat16, SEED)
        print(f"wrote {folder} in {time.perf_counter() - start:.0f} s", flush=True)
    return folder


def run(shape: str, samples: int, seq_len: int, device: str, keep: bool) -> dict[str, Any]:
    """Prune the checkpoint of `shape` in this process; time and memory of the pruning."""
    source = source_dir(shape)
    tok = byte_tokenizer()
    calibration_corpus_ids(tok, os.environ.get("SLIMLLM_DATA_DIR"), "bookcorpus")
    out = Path(tempfile.mkdtemp(prefix=f"{shape}-pruned-", dir=source.parent))
    marks: dict[str, float] = {}
    start = time.perf_counter()

    def log(message: str) -> None:
        if message.startswith("target"):
            marks["similarity_pass_seconds"] = time.perf_counter() - start
        print(f"{time.perf_counter() - start:8.1f} s  {message}", file=sys.stderr, flush=True)

    rss_start = peak_mib()
    cpu_start = cpu_seconds()
    try:
        report = prune_checkpoint(
            source,
            out,
            tok,
            prune_config(samples, seq_len),
            dtype=torch.bfloat16,
            device=device,
            log=log,
            overwrite=True,
        )
        seconds = time.perf_counter() - start
        cpu = cpu_seconds() - cpu_start
        written = sum(p.stat().st_size for p in out.glob("*.safetensors"))
    finally:
        if not keep:
            shutil.rmtree(out, ignore_errors=True)
    model_mib = report.params_before * 2 / 2**20
    peak = peak_mib()
    result: dict[str, Any] = {
        "seconds": seconds,
        "cpu_seconds": cpu,
        **marks,
        "params_before": report.params_before,
        "params_after": report.params_after,
        "achieved": report.achieved,
        "model_bf16_mib": model_mib,
        "pruned_written_mib": written / 2**20,
        "rss_before_prune_mib": rss_start,
        "peak_rss_mib": peak,
        "peak_rss_over_model": peak / model_mib,
        "threads": torch.get_num_threads(),
        "calibration": report.calibration,
    }
    if device.startswith("cuda"):
        result["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
        # What the caching allocator held at most: nearer to what nvidia-smi shows.
        result["peak_gpu_reserved_mib"] = torch.cuda.max_memory_reserved() / 2**20
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", choices=sorted(SHAPES), default="llama-7b")
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the pruned copy")
    parser.add_argument("--replace", action="store_true", help="replace this run's record")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        # Killed by its PID, the run still removes its half-written copy.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        torch.set_num_threads(args.threads)
        row = run(args.shape, args.samples, args.seq_len, args.device, args.keep)
        print(json.dumps(row))
        return
    ensure_source(args.shape)
    load = os.getloadavg()[0]
    code = code_version()
    command = [sys.executable, __file__, "--one", *sys.argv[1:]]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    row = json.loads(done.stdout.strip().splitlines()[-1])
    config = {
        "model": {"random_llama": {**COMMON, **SHAPES[args.shape]}, "seed": SEED},
        "shape": args.shape,
        "prune": asdict(prune_config(args.samples, args.seq_len)),
        "dtype": "bfloat16",
        "device": args.device,
        "streamed": True,
    }
    rec = Store.book().put(
        "prune_scale",
        config,
        {
            **row,
            "load_average_1min": load,
            "load_average_1min_end": os.getloadavg()[0],
            **code,
        },
        {"threads": args.threads},
        seconds=row["seconds"],
        replace=args.replace,
    )
    print(json.dumps(row, indent=1), rec.path, flush=True)


if __name__ == "__main__":
    main()
