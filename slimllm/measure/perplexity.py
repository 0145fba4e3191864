"""Perplexity under named protocols, with a bootstrap interval and a full record.

Zero-shot accuracy lives in `slimllm.measure.zeroshot`, latency in `slimllm.measure.latency`.

The number depends heavily on the protocol (LLaMA-7B WikiText-2: 12.62 with 128-token windows,
5.68 with 2048), so every result carries the protocol it was measured under.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from slimllm.data.texts import load_text_rows
from slimllm.measure import parallel
from slimllm.models.adapters import get_adapter
from slimllm.util.provenance import model_record, versions


@dataclass(frozen=True)
class Protocol:
    """How a corpus is cut into windows and scored."""

    name: str
    seq_len: int
    #: "start": BOS once before the whole token stream; "window": BOS opens every window;
    #: "auto": "window" for families that need it (Gemma), else "start".
    bos: str = "auto"
    joiner: str = "\n\n"
    description: str = ""


PROTOCOLS: dict[str, Protocol] = {
    "lineage-128": Protocol(
        "lineage-128",
        128,
        description="LLM-Pruner/FLAP/LoRAP/SlimLLM: texts joined with a blank line, tokenised "
        "once, non-overlapping 128-token windows, remainder dropped, exp of mean token NLL",
    ),
    "sparsegpt-2048": Protocol(
        "sparsegpt-2048",
        2048,
        description="SparseGPT/SliceGPT: the same with non-overlapping 2048-token windows",
    ),
}


@dataclass
class PerplexityResult:
    """A perplexity with its uncertainty and everything needed to reproduce it."""

    ppl: float
    nll: float
    n_tokens: int
    n_windows: int
    ci_low: float
    ci_high: float
    seconds: float
    protocol: str
    dataset: str
    record: dict[str, Any] = field(default_factory=dict)
    #: Mean NLL of each window, in order: lets a quick run on the first windows be checked
    #: against a recorded full-set result.
    window_nll: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def get_protocol(protocol: str | Protocol) -> Protocol:
    if isinstance(protocol, Protocol):
        return protocol
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {sorted(PROTOCOLS)}")
    return PROTOCOLS[protocol]


def make_windows(
    ids: torch.Tensor, seq_len: int, bos_id: int | None, bos_per_window: bool
) -> torch.Tensor:
    """Cut a 1-D token stream into non-overlapping [n, seq_len] windows, remainder dropped.

    With `bos_per_window`, each window is BOS followed by the next seq_len - 1 tokens; otherwise
    BOS (when the tokenizer has one) is put once in front of the stream.
    """
    if bos_per_window:
        if bos_id is None:
            raise ValueError(
                "this protocol needs a BOS token on every window, but the tokenizer has none"
            )
        body = seq_len - 1
        n = ids.numel() // body
        chunks = ids[: n * body].view(n, body)
        return torch.cat([torch.full((n, 1), bos_id, dtype=ids.dtype), chunks], dim=1)
    if bos_id is not None:
        ids = torch.cat([torch.tensor([bos_id], dtype=ids.dtype), ids])
    n = ids.numel() // seq_len
    return ids[: n * seq_len].view(n, seq_len)


def bootstrap_interval(
    window_nll: torch.Tensor, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of exp(mean NLL), resampling whole windows."""
    if window_nll.numel() < 2:
        value = math.exp(window_nll.mean().item())
        return value, value
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, window_nll.numel(), (n_boot, window_nll.numel()), generator=gen)
    boots = window_nll.double()[idx].mean(dim=1).exp()
    tail = (1.0 - level) / 2
    low, high = torch.quantile(boots, torch.tensor([tail, 1.0 - tail], dtype=torch.float64))
    return low.item(), high.item()


# Rows of logits formed at once. A batch's float32 logits over a ~50k vocabulary are ~200 MB,
# and copying them to float32 and through the log-softmax is memory-bound: on a 2-core CPU it
# cost about as much as the output projection itself. Blocks of 128 rows (25 MB for SmolLM2)
# halve that cost; the values are the same, row by row (benchmarks/eval_speed.py measures it).
LOGIT_ROWS = 128


def token_nll(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, softcap: float | None = None
) -> torch.Tensor:
    """Next-token NLL of each position: cross-entropy of `hidden @ weight.T` against `targets`.

    `hidden` is [N, D] (the decoder's final hidden states), `weight` the [V, D] output
    embedding, `targets` [N]. Logits are formed in the model's dtype (where the matmul is
    fast) and the log-softmax is taken in float32, so bfloat16 models lose no accuracy there.
    `softcap` applies Gemma's final-logit soft-capping, tanh(z / c) * c.
    Rows go through in blocks of `LOGIT_ROWS`, so the float32 logits of one block stay small.
    """
    out = torch.empty(hidden.size(0), dtype=torch.float32, device=hidden.device)
    for start in range(0, hidden.size(0), LOGIT_ROWS):
        rows = slice(start, start + LOGIT_ROWS)
        logits = hidden[rows] @ weight.T
        if softcap is not None:
            logits = torch.tanh(logits / softcap) * softcap
        out[rows] = F.cross_entropy(logits.float(), targets[rows], reduction="none")
    return out


@torch.no_grad()
def window_nll(
    model: PreTrainedModel, windows: torch.Tensor, batch_size: int, progress: bool
) -> torch.Tensor:
    """Mean next-token NLL of each window (the first token of a window is context only).

    The decoder body runs once per batch and the output projection only on the positions that
    are scored (not the last one), contiguous, so no [B, V, T] transposed copy is made. Under
    several processes (`slimllm.measure.parallel`) each scores a contiguous share of the
    batches, formed as one process forms them, and every process gets all windows' NLLs.
    """
    device = next(model.parameters()).device
    body = model.get_decoder()
    weight = model.get_output_embeddings().weight
    softcap = getattr(model.config, "final_logit_softcapping", None)
    out = [torch.empty(0)]
    starts = range(0, windows.size(0), batch_size)
    batches = [starts[i] for i in parallel.share(len(starts))]
    quiet = not progress or parallel.rank_and_world()[0] != 0
    for start in tqdm(batches, desc="perplexity", unit="batch", disable=quiet, leave=False):
        batch = windows[start : start + batch_size].to(device)
        hidden = body(input_ids=batch, use_cache=False).last_hidden_state[:, :-1]
        nll = token_nll(
            hidden.reshape(-1, hidden.size(-1)), weight, batch[:, 1:].reshape(-1), softcap
        )
        out.append(nll.view(batch.size(0), -1).mean(dim=1).cpu())
    # float32 values travel as Python floats, which hold them exactly.
    return torch.tensor(parallel.gather(torch.cat(out).tolist()), dtype=torch.float32)


def perplexity(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    dataset: str = "wikitext2",
    protocol: str | Protocol = "lineage-128",
    max_windows: int | None = None,
    batch_size: int = 8,
    data_dir: str | None = None,
    progress: bool = True,
) -> PerplexityResult:
    """Perplexity of `model` on `dataset` ("wikitext2", "ptb", "ptb-valid") under `protocol`.

    `max_windows` keeps the first windows only (for quick checks; the record says so).
    """
    proto = get_protocol(protocol)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_windows is not None and max_windows < 1:
        raise ValueError(f"max_windows must be None or >= 1, got {max_windows}")
    rows, origin = load_text_rows(dataset, data_dir)
    ids = tokenizer(
        proto.joiner.join(rows), add_special_tokens=False, return_tensors="pt", verbose=False
    )
    bos_per_window = proto.bos == "window" or (
        proto.bos == "auto" and get_adapter(model).bos_per_window
    )
    windows = make_windows(ids.input_ids[0], proto.seq_len, tokenizer.bos_token_id, bos_per_window)
    total_windows = windows.size(0)
    if max_windows is not None:
        windows = windows[:max_windows]
    start = time.perf_counter()
    nll = window_nll(model, windows, batch_size, progress)
    seconds = time.perf_counter() - start
    mean_nll = nll.double().mean().item()
    low, high = bootstrap_interval(nll)
    record = {
        "model": model_record(model),
        "data": {"dataset": dataset, "origin": origin, "windows_total": total_windows},
        "protocol": {
            **asdict(proto),
            "bos_per_window": bos_per_window,
            "bos_token_id": tokenizer.bos_token_id,
            "max_windows": max_windows,
            "batch_size": batch_size,
        },
        "versions": versions(),
    }
    return PerplexityResult(
        ppl=math.exp(mean_nll),
        nll=mean_nll,
        n_tokens=windows.size(0) * (windows.size(1) - 1),
        n_windows=windows.size(0),
        ci_low=low,
        ci_high=high,
        seconds=seconds,
        protocol=proto.name,
        dataset=dataset,
        record=record,
        window_nll=nll.tolist(),
    )
