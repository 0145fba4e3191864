"""The cache folder, and atomic, strict JSON files.

JSON is written beside its target and renamed into place, so a reader never sees half a file;
NaN and infinity (not JSON) are refused with the field that holds them.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    """Where converted models, built recipes and ad-hoc records live: $SLIMLLM_CACHE_DIR, else
    ~/.cache/slimllm."""
    root = os.environ.get("SLIMLLM_CACHE_DIR") or Path.home() / ".cache" / "slimllm"
    return Path(root)


def non_finite(value: Any, path: str = "") -> str | None:
    """The path of the first NaN or infinity inside `value`, else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "(the value)"
    if isinstance(value, dict):
        items = [(f"{path}.{k}" if path else str(k), v) for k, v in value.items()]
    elif isinstance(value, (list, tuple)):
        items = [(f"{path}[{i}]", v) for i, v in enumerate(value)]
    else:
        return None
    for where, v in items:
        found = non_finite(v, where)
        if found is not None:
            return found
    return None


def dumps(payload: Any, where: str) -> str:
    """Strict JSON text of `payload` (indent 1); NaN and infinity are refused, naming `where`."""
    bad = non_finite(payload)
    if bad is not None:
        raise ValueError(f"{where}: {bad} is NaN or infinite, which JSON cannot hold")
    return json.dumps(payload, indent=1, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike[str], payload: Any) -> Path:
    """Write strict JSON atomically: a temp file in the same folder, then a rename."""
    target = Path(path)
    text = dumps(payload, str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    umask = os.umask(0)
    os.umask(umask)
    try:
        # mkstemp creates 0600; results are meant to be read by anyone, as a plain open would.
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
