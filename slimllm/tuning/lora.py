"""Recovery fine-tuning with LoRA (peft): the lineage's recipe, a step budget, a NaN guard.

LLM-Pruner's `post_training.py` (which SlimLLM says it follows) tunes the pruned model on
alpaca-cleaned with LoRA r = 8, alpha 16, dropout 0.05 on q/k/v/o/gate/up/down, lr 1e-4, 2
epochs, batch 64 (micro-batches of 4 by gradient accumulation), 256-token cutoff, the loss on the
response only, 100 warm-up steps then a linear decay, AdamW, gradient norm clipped at 1 (the
transformers Trainer defaults) and a 2,000-record validation split. `TuneConfig` holds every one
of those values; `PRESETS` adds a CPU budget. The LoRA is merged back into the weights at the end,
so the tuned model has the pruned model's shapes and saves with `slimllm.models.io.save_pruned`.

Where this differs from the Trainer, on purpose: the loss of a step is the mean over every target
token of its 64 examples (not a mean of micro-batch means), so it does not depend on the
micro-batch size; padding is on the right; the first warm-up step already has a non-zero rate.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, TypedDict

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from typing_extensions import Unpack

from slimllm.data import alpaca
from slimllm.data.alpaca import IGNORE_INDEX, Example
from slimllm.util.provenance import versions

LINEAGE_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


AUTOCAST_CHOICES = ("none", "bfloat16")


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss or gradient; nothing was saved."""


@dataclass
class TuneConfig:
    """Every value of a recovery run. Defaults are LLM-Pruner's recipe (the `paper` preset)."""

    #: An alpaca-style JSON / JSONL file; None: alpaca-cleaned from the data folder (or the hub).
    data_file: str | None = None
    #: Use only the first records of the data (None: all of them; the paper: ~50k).
    max_records: int | None = None
    #: Records held out for the validation loss (LLM-Pruner: 2,000), drawn with `split_seed`.
    val_size: int = 2000
    split_seed: int = 42
    cutoff_len: int = 256
    #: False: loss on the response tokens only (LLM-Pruner's default); True: on every token.
    train_on_inputs: bool = False
    add_eos: bool = True
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: list(LINEAGE_TARGETS))
    learning_rate: float = 1e-4
    epochs: float = 2.0
    #: Examples per optimiser step; reached by accumulating micro-batches.
    batch_size: int = 64
    micro_batch_size: int = 4
    warmup_steps: int = 100
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    #: Stop after this many optimiser steps (None: the epochs decide); the schedule ends here.
    max_steps: int | None = None
    #: Validation loss every this many steps (and before the first and after the last).
    eval_every: int = 100
    #: "bfloat16": matmuls under bf16 autocast, weights and LoRA kept in float32.
    autocast: str = "none"
    #: Seeds the LoRA initialisation, the example order and dropout.
    seed: int = 42

    def validate(self) -> None:
        checks = [
            ("learning_rate", self.learning_rate > 0, "> 0"),
            ("epochs", self.epochs > 0, "> 0"),
            ("max_steps", self.max_steps is None or self.max_steps >= 1, "None or >= 1"),
            ("max_records", self.max_records is None or self.max_records >= 2, "None or >= 2"),
            ("val_size", self.val_size >= 1, ">= 1"),
            ("cutoff_len", self.cutoff_len >= 2, ">= 2"),
            ("lora_r", self.lora_r >= 1, ">= 1"),
            ("lora_alpha", self.lora_alpha > 0, "> 0"),
            ("lora_dropout", 0 <= self.lora_dropout < 1, "in [0, 1)"),
            ("batch_size", self.batch_size >= 1, ">= 1"),
            ("micro_batch_size", self.micro_batch_size >= 1, ">= 1"),
            ("warmup_steps", self.warmup_steps >= 0, ">= 0"),
            ("weight_decay", self.weight_decay >= 0, ">= 0"),
            ("max_grad_norm", self.max_grad_norm > 0, "> 0"),
            ("eval_every", self.eval_every >= 1, ">= 1"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"{name} must be {expected}, got {getattr(self, name)!r}")
        if self.batch_size % self.micro_batch_size:
            raise ValueError(
                f"batch_size ({self.batch_size}) must be a multiple of micro_batch_size "
                f"({self.micro_batch_size})"
            )
        if self.autocast not in AUTOCAST_CHOICES:
            raise ValueError(f"autocast must be one of {AUTOCAST_CHOICES}, got {self.autocast!r}")
        if not self.target_modules:
            raise ValueError("target_modules must name at least one projection")

    @classmethod
    def from_dict(cls, options: dict[str, Any]) -> TuneConfig:
        """A config from a recipe's "tune" entry; unknown keys are an error, not ignored."""
        unknown = sorted(set(options) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"tune options {unknown} are not TuneConfig fields")
        return cls(**options)


#: `paper`: the recipe as published (a GPU run: ~1,550 steps on the full alpaca-cleaned).
#: `cpu`: what a 2-core shared CPU affords in about 8-10 minutes for SmolLM2-135M: 4 steps of
#: 16 examples (64 examples, against the paper's 2 epochs of ~50k), no warm-up, a 32-record
#: validation split scored before and after. Measured there: ~6-7 s per training example under
#: load, so the batch is cut to have more than one update. float32: bf16 autocast was not faster
#: on that CPU (casting the frozen weights every forward cost more than the matmuls saved).
PRESETS: dict[str, TuneConfig] = {
    "paper": TuneConfig(),
    "cpu": TuneConfig(
        max_steps=4,
        batch_size=16,
        micro_batch_size=8,
        warmup_steps=0,
        val_size=32,
        eval_every=4,
    ),
}


def preset(name: str, **overrides: Any) -> TuneConfig:
    """A preset with some fields replaced (None values leave the preset's)."""
    if name not in PRESETS:
        raise ValueError(f"unknown tune preset {name!r}; choose one of {sorted(PRESETS)}")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})


@dataclass
class TuneReport:
    """What a recovery run did: its configuration, data, budget, loss curves and time."""

    config: dict[str, Any]
    data: dict[str, Any]
    steps: int
    planned_steps: int
    examples_seen: int
    epochs_seen: float
    target_tokens_seen: int
    trainable_parameters: int
    #: [step, loss] after each optimiser step (mean over the step's target tokens).
    train_loss: list[list[float]]
    #: [step, loss] on the held-out split; step 0 is before any update.
    val_loss: list[list[float]]
    learning_rates: list[float]
    seconds: float
    device: str
    torch_threads: int
    versions: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def learning_rate(step: int, config: TuneConfig, total: int) -> float:
    """Rate of 1-based optimiser step `step`: linear warm-up, then linear decay towards 0.

    The transformers linear schedule shifted by one warm-up step (its first update has rate 0);
    after warm-up the two are identical.
    """
    if step <= config.warmup_steps:
        return config.learning_rate * step / config.warmup_steps
    return config.learning_rate * (total - step + 1) / max(1, total - config.warmup_steps)


def split_records(
    records: Sequence[dict[str, Any]], val_size: int, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, validation): a seeded random `val_size` records held out, the rest to train on."""
    if val_size >= len(records):
        raise ValueError(
            f"val_size ({val_size}) must be smaller than the number of records ({len(records)})"
        )
    order = torch.randperm(len(records), generator=torch.Generator().manual_seed(seed)).tolist()
    return [records[i] for i in order[val_size:]], [records[i] for i in order[:val_size]]


def example_order(n: int, epochs: float, seed: int) -> list[int]:
    """Indices of the examples in training order: a fresh permutation per epoch, cut at `epochs`."""
    gen = torch.Generator().manual_seed(seed)
    order: list[int] = []
    for _ in range(math.ceil(epochs)):
        order += torch.randperm(n, generator=gen).tolist()
    return order[: round(epochs * n)]


def target_loss_sum(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    labels: torch.Tensor,
) -> torch.Tensor:
    """Summed next-token cross entropy (float32) over the labelled positions.

    Equals the cross entropy of `model(...).logits`, but the output head (a quarter of
    SmolLM2-135M's compute) runs only where a label is: not on the prompt or the padding.
    """
    hidden = model.get_decoder()(
        input_ids=input_ids, attention_mask=attention_mask, use_cache=False
    ).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    logits = model.get_output_embeddings()(hidden[:, :-1][keep])
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap  # Gemma's head, as its forward applies it
    return F.cross_entropy(logits.float(), targets[keep], reduction="sum")


def micro_batches(batch: Sequence[Example], size: int) -> list[list[Example]]:
    """`batch` in micro-batches of `size`, longest examples together to pad as little as possible.

    A step's loss is a sum over its examples, so grouping them differently changes nothing but
    the padding (and float summation order).
    """
    ranked = sorted(batch, key=lambda e: len(e.input_ids), reverse=True)
    return [ranked[start : start + size] for start in range(0, len(ranked), size)]


class _Trainer:
    """The loop's state: the PEFT model, the optimiser and how micro-batches are run."""

    def __init__(
        self, model: nn.Module, config: TuneConfig, device: torch.device, pad_id: int
    ) -> None:
        self.model, self.config, self.device, self.pad_id = model, config, device, pad_id
        params = [p for p in model.parameters() if p.requires_grad]
        self.params = params
        self.base = model.get_base_model()
        self.optimizer = torch.optim.AdamW(
            params, lr=config.learning_rate, weight_decay=config.weight_decay, eps=1e-8
        )

    def autocast(self) -> AbstractContextManager[Any]:
        if self.config.autocast == "bfloat16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def loss_sum(self, batch: Sequence[Example]) -> torch.Tensor:
        tensors = {k: v.to(self.device) for k, v in alpaca.collate(batch, self.pad_id).items()}
        with self.autocast():
            return target_loss_sum(self.base, **tensors)

    def step(self, step: int, batch: Sequence[Example], rate: float) -> float:
        """One optimiser step on `batch`; the mean target-token loss, checked to be finite."""
        self.model.train()
        tokens = sum(e.targets for e in batch)
        total = 0.0
        for micro in micro_batches(batch, self.config.micro_batch_size):
            loss = self.loss_sum(micro)
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"training loss became {loss.item()} at step {step}; stopped, nothing saved"
                )
            (loss / tokens).backward()
            total += loss.item()
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.config.max_grad_norm)
        if not torch.isfinite(norm):
            raise NonFiniteLossError(
                f"gradient norm became {norm.item()} at step {step}; stopped, nothing saved"
            )
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total / tokens

    @torch.no_grad()
    def evaluate(self, examples: Sequence[Example], step: int) -> float:
        self.model.eval()
        total = sum(
            self.loss_sum(b).item() for b in micro_batches(examples, self.config.micro_batch_size)
        )
        loss = total / sum(e.targets for e in examples)
        if not math.isfinite(loss):
            raise NonFiniteLossError(
                f"validation loss became {loss} at step {step}; stopped, nothing saved"
            )
        return loss


def _encode_all(
    tokenizer: PreTrainedTokenizerBase, records: Sequence[dict[str, Any]], config: TuneConfig
) -> tuple[list[Example], int]:
    """Encoded records, dropping those whose response was cut off entirely; and how many were."""
    examples = [
        alpaca.encode(tokenizer, r, config.cutoff_len, config.train_on_inputs, config.add_eos)
        for r in records
    ]
    kept = [e for e in examples if e.targets > 0]
    return kept, len(examples) - len(kept)


def _lora(model: PreTrainedModel, config: TuneConfig) -> nn.Module:
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def _restore(flags: Sequence[tuple[nn.Parameter, bool]]) -> None:
    for param, requires_grad in flags:
        param.requires_grad_(requires_grad)


def _examples(
    tokenizer: PreTrainedTokenizerBase,
    config: TuneConfig,
    data_dir: str | os.PathLike[str] | None,
    records: Sequence[dict[str, Any]] | None,
) -> tuple[list[Example], list[Example], dict[str, Any]]:
    """Training and validation examples, and where they came from."""
    if records is None:
        loaded, origin = alpaca.load_records(config.data_file, data_dir)
    else:
        loaded, origin = alpaca.check_records(list(records), "records"), "records passed in"
    if config.max_records is not None:
        loaded = loaded[: config.max_records]
    train_records, val_records = split_records(loaded, config.val_size, config.split_seed)
    train, dropped_train = _encode_all(tokenizer, train_records, config)
    val, dropped_val = _encode_all(tokenizer, val_records, config)
    if not train or not val:
        raise ValueError(f"no example keeps a response token within cutoff_len={config.cutoff_len}")
    data = {
        "origin": origin,
        "records": len(loaded),
        "train_examples": len(train),
        "val_examples": len(val),
        "dropped_no_target": dropped_train + dropped_val,
    }
    return train, val, data


def train_lora(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    config: TuneConfig | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    records: Sequence[dict[str, Any]] | None = None,
) -> tuple[nn.Module, TuneReport]:
    """Train LoRA adapters on `model` (float32, frozen) and return the PEFT model and report.

    `records` replaces the data that `config.data_file` / the data folder would give. Training
    runs on `device` (default: where the model is). On a non-finite loss or gradient,
    NonFiniteLossError names the step, and the LoRA is removed unmerged so `model` keeps the
    weights it came with. Most callers want :func:`tune`, which also merges.
    """
    config = config or TuneConfig()
    config.validate()
    say = log or (lambda _msg: None)
    dtypes = {p.dtype for p in model.parameters()}
    if dtypes != {torch.float32}:
        raise ValueError(
            f"tune needs a float32 model, got {sorted(map(str, dtypes))}; load it in float32 "
            "(autocast='bfloat16' computes in bfloat16 while keeping float32 weights)"
        )
    train, val, data = _examples(tokenizer, config, data_dir, records)
    order = example_order(len(train), config.epochs, config.seed)
    planned = math.ceil(len(order) / config.batch_size)
    total = min(planned, config.max_steps) if config.max_steps is not None else planned
    say(f"data: {data['origin']}; {len(train)} train / {len(val)} validation examples")
    say(
        f"{total} steps of {config.batch_size} examples ({planned} would be {config.epochs} epochs)"
    )

    target = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(target)
    torch.manual_seed(config.seed)
    with warnings.catch_warnings():
        # peft asks transformers a deprecated question about gradient checkpointing.
        warnings.simplefilter("ignore", FutureWarning)
        peft_model = _lora(model, config)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    trainer = _Trainer(peft_model, config, target, pad_id)
    train_curve: list[list[float]] = []
    val_curve: list[list[float]] = []
    rates: list[float] = []
    start = time.perf_counter()
    try:
        val_curve.append([0, trainer.evaluate(val, 0)])
        bar = tqdm(range(1, total + 1), desc="tune", unit="step", disable=not progress)
        for step in bar:
            batch = [train[i] for i in order[(step - 1) * config.batch_size :][: config.batch_size]]
            rate = learning_rate(step, config, total)
            train_curve.append([step, trainer.step(step, batch, rate)])
            rates.append(rate)
            if step % config.eval_every == 0 or step == total:
                val_curve.append([step, trainer.evaluate(val, step)])
            bar.set_postfix(loss=f"{train_curve[-1][1]:.4f}", val=f"{val_curve[-1][1]:.4f}")
    except BaseException:
        peft_model.unload()
        model.eval()
        raise
    peft_model.eval()
    seen = min(total * config.batch_size, len(order))
    report = TuneReport(
        config=asdict(config),
        data=data,
        steps=total,
        planned_steps=planned,
        examples_seen=seen,
        epochs_seen=seen / len(train),
        target_tokens_seen=sum(train[i].targets for i in order[:seen]),
        trainable_parameters=sum(p.numel() for p in trainer.params),
        train_loss=train_curve,
        val_loss=val_curve,
        learning_rates=rates,
        seconds=time.perf_counter() - start,
        device=str(target),
        torch_threads=torch.get_num_threads(),
        versions=versions(),
    )
    say(f"trained {total} steps in {report.seconds:.0f} s; validation loss {val_curve[-1][1]:.4f}")
    return peft_model, report


class TrainOptions(TypedDict, total=False):
    """How a training run goes, as :func:`train_lora` takes it after the model and config."""

    data_dir: str | os.PathLike[str] | None
    device: str | torch.device | None
    progress: bool
    log: Callable[[str], None] | None
    #: Alpaca records to train on instead of the data folder's (tests, custom corpora).
    records: Sequence[dict[str, Any]] | None


def tune(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    config: TuneConfig | None = None,
    **options: Unpack[TrainOptions],
) -> tuple[PreTrainedModel, TuneReport]:
    """LoRA recovery of `model` (:func:`train_lora`), the LoRA merged into its weights.

    Returns the model (the same object, its projections updated in place, same shapes and
    biases) in eval mode on the training device, with the requires_grad flags it came with.
    Nothing is merged if training fails.
    """
    # peft freezes every base weight; the caller's model gets its own flags back afterwards.
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        peft_model, report = train_lora(model, tokenizer, config, **options)
        merged = peft_model.merge_and_unload()
    finally:
        _restore(flags)
    return merged.eval(), report
