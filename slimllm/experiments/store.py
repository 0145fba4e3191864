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
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from slimllm.util.files import cache_dir, non_finite, write_json
from slimllm.util.provenance import cpu_info, versions

RESULTS_ENV = "SLIMLLM_RESULTS_DIR"


#: The checkout's own results folder, used when the package runs from a checkout.
CHECKOUT_RESULTS = Path(__file__).resolve().parents[2] / "results"


KEY_CHARS = 16
#: A record kind names a folder under the store root: nothing that could leave it.
KIND = re.compile(r"[a-z][a-z0-9_]{0,63}")


def normalise(value: Any) -> Any:
    """The value as JSON would give it back (tuples become lists, keys become strings)."""
    return json.loads(json.dumps(value))


def config_key(kind: str, config: dict[str, Any]) -> str:
    """Hash of the kind and the configuration, independent of key order."""
    bad = non_finite(config)
    if bad is not None:
        raise StoreError(f"the {kind} configuration's {bad} is NaN or infinite")
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


class StoreError(ValueError):
    """A store call that cannot be done as asked (a bad kind, a record it would replace)."""


def user_results_dir() -> Path:
    """Where ad-hoc runs keep their records: $SLIMLLM_CACHE_DIR/results (~/.cache/slimllm)."""
    return cache_dir() / "results"


def book_results_dir() -> Path:
    """The checkout's results/, the book's evidence (an error outside a checkout)."""
    if not (CHECKOUT_RESULTS.parent / "pyproject.toml").is_file():
        raise StoreError(
            f"the book's results folder needs a checkout of the repository; {CHECKOUT_RESULTS} "
            "is not in one (pass a folder instead)"
        )
    return CHECKOUT_RESULTS


def resolve_results_dir(path: str | os.PathLike[str] | None = None, book: bool = False) -> Path:
    """`path`, else $SLIMLLM_RESULTS_DIR, else the book's results/ (`book`) or the user's."""
    chosen = path if path is not None else os.environ.get(RESULTS_ENV) or None
    if chosen is not None:
        return Path(chosen).expanduser()
    return book_results_dir() if book else user_results_dir()


#: Result fields that change between two runs of the same measurement without changing what
#: was measured (wall time, library versions): a new record may differ in these alone.
VOLATILE = ("seconds", "versions", "measured_at")


def _numbers(value: Any, path: str = "") -> dict[str, Any]:
    """The leaves of a result by their path, volatile fields left out."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not any(word in str(k) for word in VOLATILE):
                out.update(_numbers(v, f"{path}.{k}" if path else str(k)))
        return out
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out.update(_numbers(v, f"{path}[{i}]"))
        return out
    return {path: value}


def differences(old: Any, new: Any, most: int = 3) -> list[str]:
    """Up to `most` leaves where two results differ, as "path: old -> new"."""
    a, b = _numbers(old), _numbers(new)
    changed = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    lines = [f"{k}: {a.get(k, '(absent)')} -> {b.get(k, '(absent)')}" for k in changed[:most]]
    if len(changed) > most:
        lines.append(f"... and {len(changed) - most} more")
    return lines


class Store:
    """A folder of records, one JSON file each, grouped by kind.

    `Store()` is the user's folder (ad-hoc runs: the command line, your own scripts);
    `Store.book()` is the checkout's results/, which only the benchmarks, the notebooks and
    `slimllm rerun --write` write to. $SLIMLLM_RESULTS_DIR, when set, replaces both.
    A `protect`ed store (the book's, whichever way it is named) refuses to replace a record by
    one with other numbers unless `put(..., replace=True)` says so.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, protect: bool = False) -> None:
        self.root = resolve_results_dir(root)
        # The book's folder is protected however it was reached ($SLIMLLM_RESULTS_DIR, a path).
        self.protect = protect or self.root.resolve() == CHECKOUT_RESULTS.resolve()

    @classmethod
    def book(cls, root: str | os.PathLike[str] | None = None) -> Store:
        """The store of the book's evidence: `root`, $SLIMLLM_RESULTS_DIR or results/."""
        return cls(resolve_results_dir(root, book=True), protect=True)

    def path(self, kind: str, config: dict[str, Any]) -> Path:
        if not isinstance(kind, str) or not KIND.fullmatch(kind):
            raise StoreError(
                f"a record kind is lower-case letters, digits and '_' (starting with a "
                f"letter), got {kind!r}"
            )
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
        replace: bool = False,
    ) -> Record:
        """Write a record atomically and return it.

        A record of the same configuration already stored is kept when its numbers equal the
        new ones (volatile fields aside), even with `replace`, so that re-running a finished
        benchmark leaves the store as it was; when they differ, a protected store refuses to
        replace it unless `replace`.
        """
        target = self.path(kind, config)
        if target.is_file():
            old = self.read(target)
            changed = differences(old.result, normalise(result))
            if not changed:
                return old
            if self.protect and not replace:
                raise StoreError(
                    f"{target} holds other numbers for the same configuration "
                    f"({'; '.join(changed)}); pass replace=True (command line: --replace) to "
                    "overwrite it"
                )
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
        record.path = write_json(target, record.to_json())
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
        seconds = time.perf_counter() - start
        return self.put(kind, config, result, settings, seconds=seconds, replace=recompute)

    @staticmethod
    def read(path: str | os.PathLike[str]) -> Record:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise StoreError(f"{path}: not a readable results record ({err})") from err
        if not isinstance(data, dict):
            raise StoreError(f"{str(path)!r} is not a results record (not a JSON object)")
        missing = [k for k in ("kind", "config", "result") if k not in data]
        if missing:
            raise StoreError(f"{str(path)!r} is not a results record (lacks {missing})")
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
