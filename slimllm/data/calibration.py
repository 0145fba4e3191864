"""Calibration windows: a corpus (BookCorpus substitute, or a peer's own), tokenised in pieces and
cut into seeded fixed-length windows, BOS first where the model family needs it.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerBase

from slimllm.data.sources import (
    CALIBRATION_DIR,
    CALIBRATION_SETS,
    DataError,
    _hub_dataset,
    file_sha256,
    hub_is_off,
    resolve_data_dir,
)


def _other_calibration_text(name: str, root: Path | None) -> tuple[str, str]:
    src = CALIBRATION_SETS[name]
    assert src is not None
    file = None if root is None else root / src.path
    if file is not None and file.is_file():
        raw = file.read_text(encoding="utf-8")
        rows = (
            [json.loads(line)["text"] for line in raw.splitlines() if line] if src.jsonl else [raw]
        )
        return "\n\n".join(rows), f"{src.path} sha256:{file_sha256(file)}"
    if hub_is_off():
        where = "no data folder is in use" if file is None else f"{str(file)!r} does not exist"
        raise DataError(
            f"calibration set {name!r}: {where} and the hub is off (HF_HUB_OFFLINE); "
            f"add the file to the data folder or allow the hub"
        )
    dataset, config, split, field = src.hub
    if src.jsonl:
        table = _hub_dataset(dataset, data_files={split: config}, split=split)
    else:
        table = _hub_dataset(dataset, config, split=split)
    return "\n\n".join(table[field]), f"hf:{dataset}/{config}/{split}"


def calibration_text(
    data_dir: str | os.PathLike[str] | None = None, dataset: str = "bookcorpus"
) -> tuple[str, str]:
    """A calibration corpus (a name of CALIBRATION_SETS) and its origin.

    The default is the Gutenberg BookCorpus substitute of the data folder, or BookCorpus from the
    hub; the others are read from the data folder where their file is there, else the hub.
    """
    if dataset not in CALIBRATION_SETS:
        raise DataError(
            f"unknown calibration set {dataset!r}; choose one of {', '.join(CALIBRATION_SETS)}"
        )
    root = resolve_data_dir(data_dir)
    if dataset != "bookcorpus":
        return _other_calibration_text(dataset, root)
    if root is None:
        stream = _hub_dataset("bookcorpus", split="train", streaming=True)
        rows = [row["text"] for _, row in zip(range(200_000), stream, strict=False)]
        return "\n".join(rows), "hf:bookcorpus/train (first 200k rows)"
    folder = root / CALIBRATION_DIR
    files = sorted(folder.glob("*.txt")) if folder.is_dir() else []
    if not files:
        raise DataError(f"calibration data: no *.txt novels in {str(folder)!r}")
    digest = hashlib.sha256()
    parts = []
    for f in files:
        data = f.read_bytes()
        digest.update(data)
        parts.append(data.decode("utf-8", errors="replace"))
    return "\n\n".join(parts), f"{CALIBRATION_DIR} ({len(files)} files) sha256:{digest.hexdigest()}"


@lru_cache(maxsize=4)
def _tokenized_calibration(
    tokenizer: PreTrainedTokenizerBase, root: str | None, dataset: str
) -> tuple[torch.Tensor, str]:
    text, origin = calibration_text(root, dataset)
    return tokenize_in_pieces(tokenizer, text), origin


def calibration_corpus_ids(
    tokenizer: PreTrainedTokenizerBase,
    data_dir: str | os.PathLike[str] | None = None,
    dataset: str = "bookcorpus",
) -> tuple[torch.Tensor, str]:
    """A whole calibration corpus tokenised, and its origin; cached per tokenizer, folder and
    corpus, so only the first call in a process pays for the tokenisation."""
    root = resolve_data_dir(data_dir)
    return _tokenized_calibration(tokenizer, None if root is None else str(root), dataset)


def tokenize_in_pieces(
    tokenizer: PreTrainedTokenizerBase, text: str, piece_chars: int = 1 << 16
) -> torch.Tensor:
    """Token ids of a long text, tokenised piece by piece to bound memory.

    Pieces end just before a paragraph break ("\n\n"), where pre-tokenisers split anyway, so
    the ids equal those of tokenising the whole text at once (tested for the byte tokenizer and
    SmolLM2) while peak memory stays at one piece's encoding instead of the whole corpus's.
    """
    pieces, start = [], 0
    while start < len(text):
        end = text.find("\n\n", start + piece_chars)
        end = len(text) if end < 0 else end
        pieces.append(torch.tensor(tokenizer(text[start:end], add_special_tokens=False).input_ids))
        start = end
    return torch.cat(pieces) if pieces else torch.zeros(0, dtype=torch.long)


def calibration_samples(
    tokenizer: PreTrainedTokenizerBase,
    n_samples: int = 32,
    seq_len: int = 128,
    seed: int = 42,
    bos: bool = False,
    data_dir: str | os.PathLike[str] | None = None,
    dataset: str = "bookcorpus",
) -> tuple[torch.Tensor, str]:
    """`n_samples` random windows of `seq_len` tokens from a calibration corpus.

    Returns the [n_samples, seq_len] token ids and the data's origin. Windows are drawn with a
    seeded generator from the tokenised corpus (the paper: 32 x 128 from BookCorpus, seed 42).
    With `bos`, each window starts with the BOS token (families that need it, e.g. Gemma).
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    if seq_len < 2:
        raise ValueError(f"seq_len must be >= 2, got {seq_len}")
    ids, origin = calibration_corpus_ids(tokenizer, data_dir, dataset)
    body = seq_len - 1 if bos else seq_len
    if n_samples * seq_len > ids.numel() or ids.numel() <= body:
        raise ValueError(
            f"asked for {n_samples} x {seq_len} = {n_samples * seq_len} calibration tokens, "
            f"but the calibration corpus holds only {ids.numel()} tokens"
        )
    gen = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, ids.numel() - body, (n_samples,), generator=gen)
    windows = torch.stack([ids[s : s + body] for s in starts.tolist()])
    if bos:
        if tokenizer.bos_token_id is None:
            raise ValueError("bos=True but the tokenizer has no BOS token")
        windows = torch.cat([torch.full((n_samples, 1), tokenizer.bos_token_id), windows], dim=1)
    return windows, f"{origin}; {n_samples}x{seq_len} seed {seed}"
