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
from pathlib import Path
from typing import Any

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
#: folder (the paths below); otherwise they are read from the hub. "wikitext2-valid" (the
#: tokenized validation split, which shared/data holds) stands in for FLAP's in-domain text
#: offline: WikiText-2 articles, disjoint from the test split that perplexity reads.
CALIBRATION_SETS: dict[str, CalibrationSource | None] = {
    "bookcorpus": None,
    "wikitext2-train": CalibrationSource(
        "wikitext2/wiki.train.raw", ("wikitext", "wikitext-2-raw-v1", "train", "text"), False
    ),
    "wikitext2-valid": CalibrationSource(
        "wikitext2/wiki.valid.tokens", ("wikitext", "wikitext-2-v1", "validation", "text"), False
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
CHECKOUT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


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


def _hub_rows(dataset: str, config: str | None, split: str, field: str) -> list[str]:
    return list(_hub_dataset(dataset, config, split=split)[field])


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
