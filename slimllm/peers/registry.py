"""Every pruning method by name: SlimLLM, its LoRAP-style ablation and the Table 1 baselines.

`prune_with(name, model, tokenizer, config)` prunes in place and returns a PruneReport; the
command line (`slimllm prune MODEL --method NAME --ratio R`) and recipes
(`recipe["prune"]["method"]`) both go through it, and every method saves the same kind of
model (slimllm.models.io). A method's defaults differ from PruneConfig's only where its original's
protocol is part of its definition (LLM-Pruner's 10 x 64 tokens); everything else, the
calibration corpus included, is shared.

Each method: its score; its allocation; the statistics it needs; its memory at 7B, where the
fp16 weights are 13.5 GB (LLaMA-7B: 32 layers, d 4096, 32 heads, FFN 11008).
- `slimllm`: Eq. 4 head similarity with the greedy search, Eq. 8 channel score in the feature
  space; Eq. 11 layer ratios from input/output similarity; one layer's activations at a time
  (the model may stay on the CPU). Memory: weights + one layer's calibration activations
  (32 x 128 tokens: o_proj and down_proj inputs, 4096 x 11008 floats ~ 180 MB) + float64
  moments (32 x 32 x 4096 per layer's heads, a 4096 x 4096 covariance).
- `lorap-ffn`: as `slimllm`, channels scored without the feature space (LoRAP's
  activation-weighted norms); as `slimllm`, less the covariance.
- `llm-pruner`: first-order Taylor abs(w * dL/dw) of one LM-loss backward on 10 x 64 tokens,
  summed per coupled structure; one ratio on layers 4..30 of 32 (the same fraction of the
  depth, 4..27 of SmolLM2's 30). Memory: the whole model on the device with a gradient for
  every weight (2 x 13.5 GB in fp16; 54 GB in fp32, as here) + activations of 640 tokens.
- `flap`: variance of each input column over the calibration tokens x its squared weight
  norm, standardised per layer and kind, one global ranking; statistics of the unpruned
  model, one layer at a time; bias compensation. Memory: weights + one layer's activations.
- `flap-uniform`: FLAP's scores and bias with one ratio on every layer (FLAP's own uniform
  variant, UL-UM in its paper), to separate its score from its global allocation.
- `wanda-sp`: abs(W) x input norm summed per structure; one ratio on every layer; statistics
  layer by layer with the earlier layers already pruned. Memory: as `flap`.
- `magnitude-sp`: L2 norm of each o_proj / down_proj input column summed per structure; one
  ratio on every layer; no data. Memory: the weights.
- `random`: seeded uniform random scores; one ratio on every layer. Memory: the weights.

Where these are not the originals:
- Units: attention is pruned in whole KV groups with their query heads (one head per group on
  multi-head models); FLAP and Wanda-sp had no GQA support, LLM-Pruner's GQA script does this.
  With a single KV group (multi-query attention) a peer therefore prunes only MLP channels.
- One ratio: a layer loses `ratio` of its parameters; KV groups are spread evenly over the
  layers and the MLP removes the rest (peers.uniform_counts), where the originals cut the same
  fraction of heads and of channels in each layer.
- Every method meets the same achieved parameter ratio within 0.5 points by bisection on its
  ratio, where the originals set a per-layer fraction (LLM-Pruner) or a share of the pruned
  structures' weights (FLAP).
- Calibration: SlimLLM's corpus and sampler for all (FLAP used 1024 x 128 WikiText-2 windows,
  Wanda-sp 128 x 128 C4, LoRAP 128 x 128 BookCorpus); sample counts are PruneConfig's except
  LLM-Pruner's 10 x 64. FLAP and Wanda-sp use 32 x 128 here unless asked otherwise.
  `calib_dataset` (`--calib-data`, `own` for OWN_CALIBRATION) picks a method's own corpus: the
  WikiText-2 train split and the C4 shard are not in shared/data, so offline they need their
  file added to the data folder (data.CALIBRATION_SETS names the paths); `wikitext2-valid`,
  which shared/data holds, stands in for FLAP's in-domain text (benchmarks/flap_harness.py).
- FLAP: every layer keeps at least one KV group and one channel (FLAP can drop a whole
  attention or MLP); its bias is added as a real bias on o_proj / down_proj and counted.
- LLM-Pruner: no iterative steps, no LoRA inside the method (tuning is slimllm.tuning.lora's job).
- `lorap-ffn` is not LoRAP: LoRAP's low-rank (AWSVD) attention is not reproduced; it is
  SlimLLM with LoRAP's channel score and everything else SlimLLM's.
- `magnitude-sp` follows FLAP's implementation (output-projection columns only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from typing_extensions import Unpack

from slimllm.method.config import PruneConfig
from slimllm.method.pruner import prune
from slimllm.method.report import PruneReport
from slimllm.peers.baselines import PEERS, ScoreHook, prune_peer

#: PruneConfig fields each method sets differently from PruneConfig's defaults.
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "slimllm": {},
    "lorap-ffn": {"feature_space": False},
    "llm-pruner": {"calib_samples": 10, "calib_seq_len": 64},
    "flap": {},
    "flap-uniform": {},
    "wanda-sp": {},
    "magnitude-sp": {},
    "random": {},
}


METHODS: tuple[str, ...] = tuple(METHOD_DEFAULTS)


#: The calibration corpus each method's authors used (a name of data.CALIBRATION_SETS), for
#: `--calib-data own`; None: the method reads no data. The default for all is "bookcorpus".
OWN_CALIBRATION: dict[str, str | None] = {
    "slimllm": "bookcorpus",
    "lorap-ffn": "bookcorpus",
    "llm-pruner": "bookcorpus",
    "flap": "wikitext2-train",
    "flap-uniform": "wikitext2-train",
    "wanda-sp": "c4",
    "magnitude-sp": None,
    "random": None,
}


assert set(METHODS) == {"slimllm", "lorap-ffn", *PEERS}


def check_method(name: str) -> str:
    if name not in METHOD_DEFAULTS:
        raise ValueError(f"unknown pruning method {name!r}; choose one of {', '.join(METHODS)}")
    return name


def method_config(name: str, **options: Any) -> PruneConfig:
    """The PruneConfig of `name`: PruneConfig's defaults, the method's own, then `options`."""
    return PruneConfig(**{**METHOD_DEFAULTS[check_method(name)], **options})


class RunOptions(TypedDict, total=False):
    """How a run goes, as `prune` and `prune_peer` take it (not what it computes)."""

    device: torch.device | str | None
    data_dir: str | None
    progress: bool
    log: Callable[[str], None] | None
    #: Peers only: each layer's unit scores and the units removed (see ScoreHook).
    on_scores: ScoreHook | None


def prune_with(
    name: str,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    config: PruneConfig | None = None,
    **options: Unpack[RunOptions],
) -> PruneReport:
    """Prune `model` in place with method `name`; `config` defaults to method_config(name)."""
    config = config or method_config(check_method(name))
    if name in PEERS:
        return prune_peer(model, tokenizer, name, config, **options)
    check_method(name)
    if name == "lorap-ffn" and config.feature_space:
        raise ValueError("lorap-ffn is SlimLLM without the feature space: set feature_space=False")
    if options.pop("on_scores", None) is not None:
        raise ValueError(f"on_scores reports a peer's unit scores; {name} is not a peer")
    report = prune(model, tokenizer, config, **options)
    report.method = name
    return report
