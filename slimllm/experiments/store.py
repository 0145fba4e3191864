"""The results store: every measurement is one JSON record, keyed by the configuration that made it.

A record is `results/<kind>/<key>.json`, where `key` is a hash of the kind and the configuration
(canonical JSON). The configuration holds everything that decides the result (model recipe,
dataset, protocol, dtype, limits, seeds); `settings` holds how it was run where that does not
change the number beyond rounding (batch size, device, threads); `environment` says where and
when (CPU and its flags, GPU, versions, wall time). Notebooks and the book read records; a record
can be measured again from its configuration with `slimllm rerun RECORD` (see
`slimllm.experiments.runners`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from slimllm.util.files import write_json
from slimllm.util.provenance import cpu_info, versions

RESULTS_ENV = "SLIMLLM_RESULTS_DIR"


#: The checkout's own results folder, used when the package runs from a checkout.
CHECKOUT_RESULTS = Path(__file__).resolve().parents[2] / "results"


KEY_CHARS = 16


def normalise(value: Any) -> Any:
    """The value as JSON would give it back (tuples become lists, keys become strings)."""
    return json.loads(json.dumps(value))


def config_key(kind: str, config: dict[str, Any]) -> str:
    """Hash of the kind and the configuration, independent of key order."""
    text = json.dumps({"kind": kind, "config": normalise(config)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_CHARS]


def environment() -> dict[str, Any]:
    """Where a measurement ran: CPU, GPU (if any), threads, versions and the time."""
    env: dict[str, Any] = {
        "cpu": cpu_info(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "versions": versions(),
        "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    return env


@dataclass
class Record:
    """One stored measurement."""

    kind: str
    config: dict[str, Any]
    result: Any
    settings: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None
    #: Free text: where a record was carried over from, or a note on how it was measured.
    note: str = ""
    key: str = ""
    path: Path | None = None
    #: True when this call read the record instead of measuring it.
    loaded: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "config": self.config,
            "settings": self.settings,
            "result": self.result,
            "seconds": self.seconds,
            "environment": self.environment,
            "note": self.note,
        }

    @property
    def where(self) -> str:
        """A short line: when and on what this was measured."""
        env = self.environment
        device = env.get("gpu") or env.get("cpu", {}).get("model", "?")
        when = env.get("measured_at", "?")
        torch_v = env.get("versions", {}).get("torch", "?")
        return f"measured {when} on {device} (torch {torch_v})"


def resolve_results_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """`path`, else $SLIMLLM_RESULTS_DIR, else the checkout's `results/`, else ./results."""
    chosen = path if path is not None else os.environ.get(RESULTS_ENV) or None
    if chosen is not None:
        return Path(chosen).expanduser()
    if (CHECKOUT_RESULTS.parent / "pyproject.toml").is_file():
        return CHECKOUT_RESULTS
    return Path("results")


class Store:
    """A folder of records, one JSON file each, grouped by kind."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = resolve_results_dir(root)

    def path(self, kind: str, config: dict[str, Any]) -> Path:
        return self.root / kind / f"{config_key(kind, config)}.json"

    def get(self, kind: str, config: dict[str, Any]) -> Record | None:
        """The record measured under exactly this configuration, or None."""
        target = self.path(kind, config)
        return self.read(target) if target.is_file() else None

    def put(
        self,
        kind: str,
        config: dict[str, Any],
        result: Any,
        settings: dict[str, Any] | None = None,
        seconds: float | None = None,
        env: dict[str, Any] | None = None,
        note: str = "",
    ) -> Record:
        """Write a record (atomically), replacing any earlier one with the same configuration."""
        record = Record(
            kind=kind,
            config=normalise(config),
            result=normalise(result),
            settings=normalise(settings or {}),
            environment=normalise(env if env is not None else environment()),
            seconds=seconds,
            note=note,
            key=config_key(kind, config),
        )
        record.path = write_json(self.path(kind, config), record.to_json())
        return record

    def run(
        self,
        kind: str,
        config: dict[str, Any],
        compute: Callable[[], Any],
        settings: dict[str, Any] | None = None,
        recompute: bool = False,
    ) -> Record:
        """The stored record for `config`, or compute it, store it and return it."""
        if not recompute and (found := self.get(kind, config)) is not None:
            return found
        start = time.perf_counter()
        result = compute()
        return self.put(kind, config, result, settings, seconds=time.perf_counter() - start)

    @staticmethod
    def read(path: str | os.PathLike[str]) -> Record:
        data = json.loads(Path(path).read_text())
        missing = [k for k in ("kind", "config", "result") if k not in data]
        if missing:
            raise ValueError(f"{str(path)!r} is not a results record (lacks {missing})")
        return Record(
            kind=data["kind"],
            config=data["config"],
            result=data["result"],
            settings=data.get("settings", {}),
            environment=data.get("environment", {}),
            seconds=data.get("seconds"),
            note=data.get("note", ""),
            key=data.get("key", ""),
            path=Path(path),
            loaded=True,
        )

    def records(self, kind: str | None = None) -> Iterator[Record]:
        """Every record (of one kind), in file-name order."""
        folders = (
            [self.root / kind] if kind else sorted(p for p in self.root.glob("*") if p.is_dir())
        )
        for folder in folders:
            for path in sorted(folder.glob("*.json")):
                yield self.read(path)

    def find(self, kind: str, **match: Any) -> list[Record]:
        """Records of `kind` whose configuration has every given top-level value."""
        wanted = normalise(match)
        return [
            r for r in self.records(kind) if all(r.config.get(k) == v for k, v in wanted.items())
        ]
