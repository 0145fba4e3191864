"""Recorded results: measure once, keep the number with the configuration that produced it.

A full-set perplexity of SmolLM2 takes tens of minutes on a 2-core CPU, so notebooks and the
book reuse a result file when its recorded configuration is exactly the one asked for, and say
so. Anything else (a different model, protocol, seed, window limit, ...) is measured afresh.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slimllm.provenance import versions


def write_json(path: str | os.PathLike[str], payload: Any) -> Path:
    """Write JSON atomically: a temp file in the same folder, then a rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    umask = os.umask(0)
    os.umask(umask)
    try:
        # mkstemp creates 0600; results are meant to be read by anyone, as a plain open would.
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, indent=2, sort_keys=False)
            fh.write("\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def cached_run(
    path: str | os.PathLike[str],
    config: dict[str, Any],
    compute: Callable[[], Any],
    recompute: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """Return (result, entry) from `path` if it was measured under `config`, else compute it.

    The entry also holds when, where and with which versions the result was measured, and
    `"loaded": True` when it came from the file rather than from this call.
    """
    target = Path(path)
    wanted = json.loads(json.dumps(config))  # normalise tuples and the like as JSON would
    if not recompute and target.is_file():
        entry = json.loads(target.read_text())
        if entry.get("config") == wanted:
            return entry["result"], {**entry, "loaded": True}
    result = compute()
    entry = {
        "config": wanted,
        "result": json.loads(json.dumps(result)),
        "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
    }
    write_json(target, entry)
    return entry["result"], {**entry, "loaded": False}


DENSE_DATASETS = ["wikitext2", "ptb", "ptb-valid"]


def baseline_config(
    model: str, dtype: str, max_windows: int | None, batch_size: int
) -> dict[str, Any]:
    """The configuration a dense-baseline result is keyed by (notebook 01 and its benchmark)."""
    return {
        "model": model,
        "dtype": dtype,
        "protocol": "lineage-128",
        "datasets": DENSE_DATASETS,
        "max_windows": max_windows,
        "batch_size": batch_size,
    }
