"""Datasets: perplexity texts, calibration samples, zero-shot tasks and the LoRA corpus.

Everything is read from a data directory laid out like `../shared/data` (the `data_dir`
argument, else the `SLIMLLM_DATA_DIR` environment variable). With neither set, the public
Hugging Face datasets are used, which needs network access.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

DATA_ENV = "SLIMLLM_DATA_DIR"


class DataError(ValueError):
    """A dataset is missing, or a file does not hold the expected fields."""


@dataclass(frozen=True)
class TextSource:
    """A perplexity corpus: a local file and its Hugging Face equivalent."""

    path: str
    hub: tuple[str, str | None, str, str]  # (dataset, config, split, field)
    strip: bool  # PTB sentences are stripped; WikiText rows keep their newline


TEXTS: dict[str, TextSource] = {
    "wikitext2": TextSource(
        "wikitext2/wiki.test.raw", ("wikitext", "wikitext-2-raw-v1", "test", "text"), False
    ),
    "ptb": TextSource(
        "ptb/ptb.test.txt", ("ptb_text_only", "penn_treebank", "test", "sentence"), True
    ),
    "ptb-valid": TextSource(
        "ptb/ptb.valid.txt", ("ptb_text_only", "penn_treebank", "validation", "sentence"), True
    ),
}

CALIBRATION_DIR = "bookcorpus_substitute_gutenberg"


@dataclass(frozen=True)
class CalibrationSource:
    """A calibration corpus other than the default: a file the data folder may hold, else the
    hub split the method's authors sampled from."""

    path: str
    hub: tuple[str, str | None, str, str]  # (dataset, config or data file, split, field)
    jsonl: bool  # one JSON record per line with a "text" field, else plain text


#: The default, "bookcorpus", is SlimLLM's, LLM-Pruner's and LoRAP's (the Gutenberg substitute
#: offline). The others are the peers' own: FLAP sampled WikiText-2's train split, Wanda-sp the
#: first C4 shard. Neither is in shared/data, so offline they need their file added to the data
#: folder (the paths below); otherwise they are read from the hub.
CALIBRATION_SETS: dict[str, CalibrationSource | None] = {
    "bookcorpus": None,
    "wikitext2-train": CalibrationSource(
        "wikitext2/wiki.train.raw", ("wikitext", "wikitext-2-raw-v1", "train", "text"), False
    ),
    "c4": CalibrationSource(
        "c4/c4-train.00000-of-01024.json",
        ("allenai/c4", "en/c4-train.00000-of-01024.json.gz", "train", "text"),
        True,
    ),
}


@dataclass(frozen=True)
class TaskSource:
    """A zero-shot task file and the fields every record must have."""

    path: str
    fields: tuple[str, ...]


TASKS: dict[str, TaskSource] = {
    "boolq": TaskSource("boolq/dev.jsonl", ("passage", "question", "answer")),
    "piqa": TaskSource("piqa/valid_with_labels.jsonl", ("goal", "sol1", "sol2", "label")),
    "hellaswag": TaskSource("hellaswag/hellaswag_val_klosax.jsonl", ("query", "endings", "label")),
    "winogrande": TaskSource("winogrande/dev.jsonl", ("sentence", "option1", "option2", "answer")),
    "arc_easy": TaskSource("arc_easy/ARC-Easy-Test.jsonl", ("question", "choices", "answerKey")),
    "arc_challenge": TaskSource(
        "arc_challenge/ARC-Challenge-Test.jsonl", ("question", "choices", "answerKey")
    ),
    "openbookqa": TaskSource(
        "openbookqa/test_hf_main.jsonl", ("question_stem", "choices", "answerKey")
    ),
}

ALPACA = TaskSource(
    "alpaca_cleaned/alpaca_data_cleaned_first5000.json", ("instruction", "input", "output")
)


#: The folder the Makefile uses: `shared/data` beside the checkout the package runs from.
CHECKOUT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def resolve_data_dir(path: str | os.PathLike[str] | None = None) -> Path | None:
    """The data directory in use, or None for the hub datasets.

    In order: `path`, $SLIMLLM_DATA_DIR, then `../shared/data` beside the checkout (what the
    Makefile uses), so the command line, the package and `make` agree without any variable set.
    """
    chosen = path if path is not None else os.environ.get(DATA_ENV) or None
    if chosen is None:
        return CHECKOUT_DATA if CHECKOUT_DATA.is_dir() else None
    root = Path(chosen).expanduser()
    if not root.is_dir():
        origin = "data_dir argument" if path is not None else f"${DATA_ENV}"
        raise DataError(f"{origin} points at {str(root)!r}, which is not a directory")
    return root


def hub_is_off() -> bool:
    """Whether HF_HUB_OFFLINE or HF_DATASETS_OFFLINE forbids reading from the hub."""
    return any(
        os.environ.get(v, "0") not in ("", "0") for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def _hub_dataset(name: str, *args: Any, **kwargs: Any) -> Any:
    """`datasets.load_dataset`, failing in one line (no retries) when the hub is out of reach."""
    hint = f"set ${DATA_ENV} (or --data-dir) to a local data folder laid out like shared/data"
    if hub_is_off():
        raise DataError(
            f"no local data folder was found and the hub is off (HF_HUB_OFFLINE); {hint}"
        )
    from datasets import load_dataset

    try:
        return load_dataset(name, *args, **kwargs)
    except Exception as err:  # offline, removed configs and renamed fields all land here
        raise DataError(
            f"could not load {name!r} from the hub ({type(err).__name__}); {hint}"
        ) from err


def _local_file(root: Path, rel: str, dataset: str) -> Path:
    file = root / rel
    if not file.is_file():
        raise DataError(f"dataset {dataset!r}: expected file {str(file)!r} in the data directory")
    return file


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_text_rows(
    name: str, data_dir: str | os.PathLike[str] | None = None
) -> tuple[list[str], str]:
    """Rows of a perplexity corpus, laid out like the Hugging Face split, and their origin.

    WikiText rows keep their trailing newline and blank lines become "" (as in the HF split);
    PTB rows are stripped sentences. The origin names the file and its sha256.
    """
    if name not in TEXTS:
        raise DataError(f"unknown text dataset {name!r}; choose one of {sorted(TEXTS)}")
    src = TEXTS[name]
    root = resolve_data_dir(data_dir)
    if root is None:
        return _hub_rows(*src.hub), f"hf:{src.hub[0]}/{src.hub[1]}/{src.hub[2]}"
    file = _local_file(root, src.path, name)
    lines = file.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if src.strip:
        rows = [line.strip() for line in lines]
    else:
        rows = ["" if not line.strip() else line + "\n" for line in lines]
    return rows, f"{src.path} sha256:{file_sha256(file)}"


def load_text(name: str, data_dir: str | os.PathLike[str] | None = None) -> str:
    """The corpus joined the lineage's way: rows separated by a blank line ("\\n\\n")."""
    return "\n\n".join(load_text_rows(name, data_dir)[0])


def _hub_rows(dataset: str, config: str | None, split: str, field: str) -> list[str]:
    return list(_hub_dataset(dataset, config, split=split)[field])


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


def _read_records(file: Path, dataset: str) -> list[dict[str, Any]]:
    try:
        if file.suffix == ".jsonl":
            return [
                json.loads(line)
                for line in file.read_text(encoding="utf-8").splitlines()
                if line.strip()
            ]
        loaded = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"dataset {dataset!r}: {str(file)!r} is not valid JSON ({err})") from err
    if not isinstance(loaded, list):
        raise DataError(f"dataset {dataset!r}: {str(file)!r} should hold a JSON array of records")
    return loaded


def _check_fields(
    records: Iterable[dict[str, Any]], fields: tuple[str, ...], dataset: str, file: Path
) -> None:
    for i, rec in enumerate(records):
        missing = [f for f in fields if f not in rec]
        if missing:
            raise DataError(
                f"dataset {dataset!r}: record {i} of {str(file)!r} lacks field(s) {missing}; "
                f"expected {list(fields)}"
            )


def load_task(
    name: str, data_dir: str | os.PathLike[str] | None = None
) -> tuple[list[dict[str, Any]], Path]:
    """Records of one of the 7 commonsense tasks (local files only), checked for their fields."""
    if name not in TASKS:
        raise DataError(f"unknown task {name!r}; choose one of {sorted(TASKS)}")
    root = resolve_data_dir(data_dir)
    if root is None:
        raise DataError(f"task {name!r}: set ${DATA_ENV}; lm-eval's hub loaders are used otherwise")
    src = TASKS[name]
    file = _local_file(root, src.path, name)
    records = _read_records(file, name)
    _check_fields(records, src.fields, name, file)
    return records, file


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
