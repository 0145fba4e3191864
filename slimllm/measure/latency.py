"""Inference latency as in the paper's Table 3, beside parameter and FLOP ratios.

Prefill: a 256-token input and one generated token (time to first token). Decoding: a batch
of 8 prompts, 256 new tokens, greedy, with a KV cache. Every model is warmed up, then the
repeats interleave the models (in a rotating order) so that machine drift and a neighbour's load
fall on all of them alike; each phase reports the median, quartiles and extremes.

Two drivers: "generate" calls `model.generate` with min = max new tokens (what a user runs);
"loop" is a bare greedy loop over a `DynamicCache` (what the model itself costs).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import DynamicCache

from slimllm.measure import flops

DRIVERS = ("generate", "loop")


@dataclass(frozen=True)
class LatencySpec:
    """What is timed; every default is the paper's protocol except the decode prompt length."""

    prefill_len: int = 256
    decode_batch: int = 8
    new_tokens: int = 256
    #: The paper does not give the decoding prompt length; a short prompt keeps it decode-bound.
    decode_prompt_len: int = 32
    repeats: int = 20
    warmup: int = 2
    driver: str = "generate"
    seed: int = 0

    def validate(self) -> None:
        for name in ("prefill_len", "decode_batch", "new_tokens", "decode_prompt_len", "repeats"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {self.warmup}")
        if self.driver not in DRIVERS:
            raise ValueError(f"driver must be one of {DRIVERS}, got {self.driver!r}")


@dataclass
class Timing:
    """Seconds of one phase over the repeats."""

    median: float
    q1: float
    q3: float
    min: float
    max: float
    mean: float
    times: list[float] = field(default_factory=list)

    @classmethod
    def of(cls, times: Sequence[float]) -> Timing:
        values = sorted(times)
        if len(values) >= 2:
            q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        else:
            q1 = q3 = values[0]
        return cls(
            statistics.median(values),
            q1,
            q3,
            values[0],
            values[-1],
            statistics.fmean(values),
            list(times),
        )


def _prompt(vocab: int, batch: int, length: int, seed: int) -> torch.Tensor:
    # Random ordinary tokens: content does not change the work of a dense forward.
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, min(vocab, 32000), (batch, length), generator=gen)


@torch.no_grad()
def greedy_loop(model: nn.Module, ids: torch.Tensor, new_tokens: int) -> torch.Tensor:
    """Greedy decoding with a DynamicCache and no generate machinery; returns the new tokens."""
    cache = DynamicCache(config=model.config)
    out = model(input_ids=ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
    token = out.logits[:, -1].argmax(-1, keepdim=True)
    tokens = [token]
    for _ in range(new_tokens - 1):
        out = model(input_ids=token, past_key_values=cache, use_cache=True, logits_to_keep=1)
        token = out.logits[:, -1].argmax(-1, keepdim=True)
        tokens.append(token)
    return torch.cat(tokens, dim=1)


@torch.no_grad()
def greedy_generate(model: nn.Module, ids: torch.Tensor, new_tokens: int) -> torch.Tensor:
    """`model.generate`, greedy, exactly `new_tokens` new tokens; returns the new tokens."""
    out = model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        do_sample=False,
        num_beams=1,
        pad_token_id=model.config.eos_token_id,
    )
    return out[:, ids.shape[1] :]


def _driver(name: str) -> Callable[[nn.Module, torch.Tensor, int], torch.Tensor]:
    return greedy_generate if name == "generate" else greedy_loop


def _timed(fn: Callable[[], torch.Tensor], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    if result.shape[1] < 1:
        raise RuntimeError("generation returned no tokens")
    return seconds


def _work(model: nn.Module, spec: LatencySpec) -> dict[str, Any]:
    return {
        "parameters": flops.parameter_counts(model),
        "prefill_flops": flops.prefill_flops(model, spec.prefill_len),
        "decode_flops": flops.decode_flops(
            model, spec.decode_prompt_len, spec.new_tokens, spec.decode_batch
        ),
        "layers": [asdict(s) for s in flops.layer_shapes(model)],
    }


def measure_latency(
    models: dict[str, nn.Module], spec: LatencySpec | None = None, progress: bool = True
) -> dict[str, Any]:
    """Time prefill and decoding of every model, interleaved; ratios are to the first model.

    Returns `{"spec", "models": {label: {work, prefill, decode, ratios}}}`, times in seconds.
    """
    spec = spec or LatencySpec()
    spec.validate()
    if not models:
        raise ValueError("models must name at least one model")
    run = _driver(spec.driver)
    labels = list(models)
    inputs = {}
    for label, model in models.items():
        vocab = model.get_input_embeddings().num_embeddings
        device = next(model.parameters()).device
        inputs[label] = (
            _prompt(vocab, 1, spec.prefill_len, spec.seed).to(device),
            _prompt(vocab, spec.decode_batch, spec.decode_prompt_len, spec.seed + 1).to(device),
            device,
        )

    def prefill(label: str) -> float:
        ids, _, device = inputs[label]
        return _timed(lambda: run(models[label], ids, 1), device)

    def decode(label: str) -> float:
        _, ids, device = inputs[label]
        return _timed(lambda: run(models[label], ids, spec.new_tokens), device)

    for label in labels:
        for _ in range(spec.warmup):
            prefill(label)
            decode(label)
    times: dict[str, dict[str, list[float]]] = {m: {"prefill": [], "decode": []} for m in labels}
    for r in tqdm(range(spec.repeats), desc="latency", disable=not progress):
        shift = r % len(labels)
        for label in labels[shift:] + labels[:shift]:
            times[label]["prefill"].append(prefill(label))
            times[label]["decode"].append(decode(label))
    out: dict[str, Any] = {}
    for label in labels:
        out[label] = {
            **_work(models[label], spec),
            "prefill": asdict(Timing.of(times[label]["prefill"])),
            "decode": asdict(Timing.of(times[label]["decode"])),
        }
    reference = out[labels[0]]
    for entry in out.values():
        entry["ratios"] = ratios(entry, reference)
    return {"spec": asdict(spec), "reference": labels[0], "models": out}


def ratios(entry: dict[str, Any], reference: dict[str, Any]) -> dict[str, float]:
    """Model / reference for parameters, FLOPs and median times, and time speedup over FLOP speedup.

    `*_efficiency` = (t_ref / t) / (F_ref / F): 1 when time falls exactly as the FLOPs do.
    """
    result = {"parameters": entry["parameters"]["total"] / reference["parameters"]["total"]}
    for phase in ("prefill", "decode"):
        flop_ratio = entry[f"{phase}_flops"] / reference[f"{phase}_flops"]
        time_ratio = entry[phase]["median"] / reference[phase]["median"]
        result[f"{phase}_flops"] = flop_ratio
        result[f"{phase}_time"] = time_ratio
        result[f"{phase}_efficiency"] = flop_ratio / time_ratio
    return result


def table(result: dict[str, Any]) -> str:
    """The latency table: medians with IQR, and each ratio to the reference model."""
    spec = result["spec"]
    width = max(12, *(len(label) for label in result["models"]))
    lines = [
        f"prefill: {spec['prefill_len']} tokens -> 1; decode: batch {spec['decode_batch']}, "
        f"{spec['decode_prompt_len']}-token prompt, {spec['new_tokens']} new tokens; "
        f"{spec['repeats']} repeats, driver {spec['driver']}; ratios to {result['reference']}",
        f"{'model':<{width}} {'params':>10} {'prefill s (IQR)':>24} {'decode s (IQR)':>22} "
        f"{'param':>6} {'pFLOP':>6} {'pTime':>6} {'pEff':>5} {'dFLOP':>6} {'dTime':>6} "
        f"{'dEff':>5}",
    ]
    for label, m in result["models"].items():
        p, d, r = m["prefill"], m["decode"], m["ratios"]
        lines.append(
            f"{label:<{width}} {m['parameters']['total']:>10,} "
            f"{p['median']:>8.4f} ({p['q1']:.4f}-{p['q3']:.4f}) "
            f"{d['median']:>7.3f} ({d['q1']:.3f}-{d['q3']:.3f}) "
            f"{r['parameters']:>6.3f} {r['prefill_flops']:>6.3f} {r['prefill_time']:>6.3f} "
            f"{r['prefill_efficiency']:>5.2f} {r['decode_flops']:>6.3f} {r['decode_time']:>6.3f} "
            f"{r['decode_efficiency']:>5.2f}"
        )
    return "\n".join(lines)
