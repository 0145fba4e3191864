"""The rows of one commonsense task (BoolQ, PIQA, HellaSwag, WinoGrande, ARC-e, ARC-c, OBQA)
from the data folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from slimllm.data.sources import (
    DATA_ENV,
    TASKS,
    DataError,
    _check_fields,
    _local_file,
    _read_records,
    resolve_data_dir,
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
