"""Perplexity texts (WikiText-2, PTB) as rows, from the data folder or the hub."""

from __future__ import annotations

import os

from slimllm.data.sources import (
    TEXTS,
    DataError,
    _hub_rows,
    _local_file,
    file_sha256,
    resolve_data_dir,
)


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
