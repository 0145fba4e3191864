"""Alpaca instruction records as training examples, the way LLM-Pruner's recovery step made them.

A record `{"instruction", "input", "output"}` becomes the Alpaca-LoRA prompt (the template
LLM-Pruner's `post_training.py` uses, with and without an input) followed by the response,
tokenised with the tokenizer's own special tokens, truncated to `cutoff_len` tokens, with EOS
appended when there is room. By default the loss sees the response only: the prompt's tokens
are labelled -100, as LLM-Pruner does unless `--train_on_inputs` is given.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from slimllm.data.sources import (
    ALPACA,
    DataError,
    _check_fields,
    _hub_dataset,
    _local_file,
    _read_records,
    file_sha256,
    resolve_data_dir,
)


def load_alpaca(
    data_dir: str | os.PathLike[str] | None = None, limit: int | None = None
) -> list[dict[str, str]]:
    """Alpaca-cleaned instruction records (the local 5,000-record subset, or the hub's full set)."""
    root = resolve_data_dir(data_dir)
    if root is None:
        records = list(_hub_dataset("yahma/alpaca-cleaned", split="train"))
    else:
        file = _local_file(root, ALPACA.path, "alpaca_cleaned")
        records = _read_records(file, "alpaca_cleaned")
        _check_fields(records, ALPACA.fields, "alpaca_cleaned", file)
    return records[:limit] if limit is not None else records


FIELDS = ALPACA.fields


#: Label of a token the loss ignores (torch's cross_entropy default).
IGNORE_INDEX = -100


PROMPT_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)


PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"
)


def prompt(record: dict[str, Any]) -> str:
    """The prompt of a record, up to and including "### Response:\\n" (no response)."""
    if record["input"]:
        return PROMPT_WITH_INPUT.format(instruction=record["instruction"], input=record["input"])
    return PROMPT_NO_INPUT.format(instruction=record["instruction"])


def check_records(records: Any, origin: str) -> list[dict[str, Any]]:
    """`records` if it is a non-empty list of dicts with string alpaca fields, else DataError."""
    if not isinstance(records, list) or not records:
        raise DataError(f"{origin}: expected a non-empty JSON array of alpaca records")
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise DataError(f"{origin}: record {i} is not an object with fields {list(FIELDS)}")
        missing = [f for f in FIELDS if f not in rec]
        if missing:
            raise DataError(
                f"{origin}: record {i} lacks the alpaca field(s) {missing}; "
                f"each record needs {list(FIELDS)}"
            )
        wrong = [f for f in FIELDS if not isinstance(rec[f], str)]
        if wrong:
            raise DataError(f"{origin}: record {i} has non-text field(s) {wrong}")
    return records


def read_file(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Alpaca records from a JSON array or a JSON-lines file, checked for their fields."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"alpaca data file {str(file)!r} does not exist")
    try:
        text = file.read_text(encoding="utf-8")
        if file.suffix == ".jsonl":
            loaded: Any = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            loaded = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"alpaca data file {str(file)!r} is not valid JSON ({err})") from err
    return check_records(loaded, f"alpaca data file {str(file)!r}")


def load_records(
    data_file: str | None = None, data_dir: str | os.PathLike[str] | None = None
) -> tuple[list[dict[str, Any]], str]:
    """Records and their origin: `data_file`, else alpaca-cleaned (local subset, else the hub)."""
    if data_file is not None:
        return read_file(data_file), f"{data_file} sha256:{file_sha256(Path(data_file))}"
    root = resolve_data_dir(data_dir)
    records = load_alpaca(data_dir)
    if root is None:
        return records, "hf:yahma/alpaca-cleaned/train"
    return records, f"{ALPACA.path} sha256:{file_sha256(root / ALPACA.path)}"


@dataclass(frozen=True)
class Example:
    """One tokenised record: ids and labels (IGNORE_INDEX where the loss does not look)."""

    input_ids: list[int]
    labels: list[int]

    @property
    def targets(self) -> int:
        """Tokens the loss is computed on (a label is predicted from the token before it)."""
        return sum(label != IGNORE_INDEX for label in self.labels[1:])


def encode(
    tokenizer: PreTrainedTokenizerBase,
    record: dict[str, Any],
    cutoff_len: int = 256,
    train_on_inputs: bool = False,
    add_eos: bool = True,
) -> Example:
    """The record as a training example (LLM-Pruner's `generate_and_tokenize_prompt`).

    Prompt + response is tokenised and truncated to `cutoff_len`; EOS is appended if it fits
    and is not already last. Without `train_on_inputs` the first tokens, as many as the prompt
    alone tokenises to, are labelled IGNORE_INDEX.
    """
    full = tokenizer(prompt(record) + record["output"], truncation=True, max_length=cutoff_len)
    ids = list(full["input_ids"])
    eos = tokenizer.eos_token_id
    if add_eos and eos is not None and ids[-1:] != [eos] and len(ids) < cutoff_len:
        ids.append(eos)
    labels = list(ids)
    if not train_on_inputs:
        user = tokenizer(prompt(record), truncation=True, max_length=cutoff_len)["input_ids"]
        labels[: len(user)] = [IGNORE_INDEX] * min(len(user), len(labels))
    return Example(ids, labels)


def collate(examples: Sequence[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded `input_ids`, `attention_mask` and `labels` (padding labelled IGNORE_INDEX).

    LLM-Pruner pads on the left; with right padding the real tokens keep positions 0.. as in
    an unpadded forward, so an example's loss does not depend on its batch neighbours.
    """
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        ids[row, :n] = torch.tensor(example.input_ids)
        labels[row, :n] = torch.tensor(example.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
