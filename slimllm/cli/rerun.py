"""`slimllm rerun RECORD`: measure a stored record again from its configuration and compare."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import torch

from slimllm.cli import common
from slimllm.experiments.runners import runner_for
from slimllm.experiments.store import Store
from slimllm.util.files import non_finite

HELP = "measure a results record again from its configuration"
DESCRIPTION = (
    "Rebuild the model from the record's recipe, measure again, and print the "
    "stored and new numbers side by side. The store is left as it was unless --write, which "
    "replaces the record with the new measurement (in the record's own store, the book's "
    "results/ included: this is how its evidence is measured again on purpose)."
)


def add_parser(sub: Any) -> None:
    p = common.command_parser(sub, "rerun", HELP, DESCRIPTION)
    p.add_argument("record", type=Path, help="a JSON record under results/<kind>/")
    common.add_device(p, "override the recorded device")
    p.add_argument(
        "--write", action="store_true", help="replace the stored record with the new measurement"
    )


def numbers(value: Any, prefix: str = "") -> dict[str, float]:
    """The top-level and nested scalar numbers of a result, by dotted name (lists skipped)."""
    out: dict[str, float] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            if key != "record":
                out.update(numbers(item, f"{prefix}{key}."))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        out[prefix.rstrip(".")] = float(value)
    return out


def _store_of(record: Path, kind: str) -> Store:
    """The store `record` lies in, as <root>/<kind>/<key>.json; the book's is no exception, as
    --write asks for the replacement."""
    if record.parent.name != kind:
        raise ValueError(
            f"RECORD {record} is not in a store's {kind}/ folder, so --write has no store to "
            "write to"
        )
    return Store(record.parent.parent)


def run(args: argparse.Namespace) -> int:
    if not args.record.is_file():
        raise ValueError(f"RECORD {str(args.record)!r} is not a file")
    old = Store.read(args.record)
    bad = non_finite(old.config)
    if bad is not None:
        raise ValueError(f"RECORD {args.record}: its config's {bad} is NaN or infinite")
    runner = runner_for(old.kind)
    store = _store_of(args.record, old.kind) if args.write else None
    settings = dict(old.settings)
    if args.device is not None:
        settings["device"] = common.device_or_default(args.device)
    elif str(settings.get("device", "cpu")).startswith("cuda") and not torch.cuda.is_available():
        settings["device"] = "cpu"
        print(f"recorded on {old.settings['device']}; no GPU here, measuring on the CPU")
    print(f"{old.kind} record {old.key}, {old.where}")
    try:
        if store is not None:
            new = store.run(
                old.kind, old.config, lambda: runner(old.config, settings), settings, recompute=True
            )
            result = new.result
        else:
            result = runner(old.config, settings)
    except KeyError as err:
        raise ValueError(
            f"RECORD {args.record} lacks {err}, which its {old.kind} run reads"
        ) from err
    before, after = numbers(old.result), numbers(result)
    print(f"{'value':<32} {'stored':>14} {'now':>14} {'rel. diff':>10}")
    for name in sorted(before.keys() & after.keys()):
        a, b = before[name], after[name]
        rel = abs(b - a) / abs(a) if a else (0.0 if b == a else math.inf)
        print(f"{name:<32} {a:>14.6g} {b:>14.6g} {rel:>10.2e}")
    if store is not None:
        print(f"record replaced: {new.path}")
    return 0


def left_as_it_was(args: argparse.Namespace) -> str:
    return f"RECORD {args.record} left as it was"
