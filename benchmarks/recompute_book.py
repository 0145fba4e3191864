"""Every record behind the Results pages, measured where the store lacks it, in parallel lanes.

`make results` runs this. The five resumable table scripts (table1, flap_harness, ablations,
other_models for Gemma-3-270M and for SmolLM2 at decoder fractions) run in `--lanes` processes
of one thread each, with OMP_WAIT_POLICY=PASSIVE: lane K runs every script with `--part K/N`,
which splits the rows by the key of the pruned model they start from, so each model is pruned,
tuned and measured in one lane only. Then the Table 3 latency benchmark runs alone (it times
the machine, so nothing may share it) and the table scripts write their table records from the
store (`--assemble`). A failed step stops the run; what was stored stays (each record is written
whole), so the same command resumes it.

A timed recompute from scratch: `--store DIR --cache-dir DIR` send the records and the built
models to empty folders (the converted base models are linked from the usual cache: converting
them is set-up, not recompute), and `--summary` writes a "recompute_run" record into the book's
store: the wall time of each phase, the load average sampled each minute (above the number of
lanes, something else shared the cores), the records produced by kind, and how the new numbers
agree with the book's records of the same configuration (`slimllm.experiments.recompute`).
A machine session can end before the run does: the same command resumes it, and the run's wall
time is the sum of its segments, kept in `DIR/recompute_segments.json` and rewritten each minute
(a killed segment keeps its time up to its last minute; the cells it had in flight are measured
again by the next one).

    python benchmarks/recompute_book.py --dry-run       # the commands, lane by lane
    python benchmarks/recompute_book.py                 # what results/ lacks (make results)
    python benchmarks/recompute_book.py --store /tmp/rc/results --cache-dir /tmp/rc/cache --summary
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from slimllm.experiments.recompute import agreement
from slimllm.experiments.store import RESULTS_ENV, Store
from slimllm.util.files import cache_dir, write_json

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: The table scripts, each run in every lane with `--part K/N --threads 1`.
LANE_SCRIPTS: tuple[tuple[str, ...], ...] = (
    ("table1.py",),
    ("flap_harness.py",),
    ("ablations.py",),
    ("other_models.py",),
    ("other_models.py", "--model", "smollm2-135m", "--methods", "slimllm"),
)
#: Run alone once the lanes are done.
ALONE: tuple[tuple[str, ...], ...] = (("latency.py", "--preset", "table3"),)
#: The scripts that write a table record (flap_harness's rows are read by the Table 1 page).
ASSEMBLE = tuple(s for s in LANE_SCRIPTS if s[0] != "flap_harness.py")
#: Converted base models, linked into a scratch cache rather than converted again.
BASE_MODELS = ("smollm2-135m", "gemma3-270m")
LOAD_EVERY_S = 60.0


def command(script: tuple[str, ...], *extra: str) -> list[str]:
    return [sys.executable, str(HERE / script[0]), *script[1:], *extra]


def plan(lanes: int) -> dict[str, list[list[str]]]:
    """The commands of each phase: one list per lane, then the lone and assembling steps."""
    out = {
        f"lane {k}": [command(s, "--part", f"{k}/{lanes}", "--threads", "1") for s in LANE_SCRIPTS]
        for k in range(1, lanes + 1)
    }
    out["alone"] = [command(s) for s in ALONE]
    out["assemble"] = [command(s, "--assemble") for s in ASSEMBLE]
    return out


class Runner:
    """Runs commands with a shared environment, prefixing their output with a name; the first
    failure stops the commands of every other lane."""

    def __init__(self, env: dict[str, str], log: TextIO) -> None:
        self.env = env
        self.log = log
        self.lock = threading.Lock()
        self.failed: str | None = None
        self.running: set[subprocess.Popen[str]] = set()

    def say(self, name: str, line: str) -> None:
        with self.lock:
            text = f"[{name}] {line.rstrip()}"
            print(text, flush=True)
            self.log.write(text + "\n")
            self.log.flush()

    def run(self, name: str, commands: list[list[str]]) -> None:
        for cmd in commands:
            self.say(name, "$ " + " ".join(Path(c).name if c == sys.executable else c for c in cmd))
            # Started under the lock, so a failure elsewhere either comes first (and this lane
            # stops here) or finds this process to terminate.
            with self.lock:
                if self.failed:
                    return
                proc = subprocess.Popen(
                    cmd,
                    cwd=ROOT,
                    env=self.env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                self.running.add(proc)
            assert proc.stdout is not None
            for line in proc.stdout:
                self.say(name, line)
            code = proc.wait()
            with self.lock:
                self.running.discard(proc)
            if code:
                with self.lock:
                    if not self.failed:
                        self.failed = f"{name}: `{' '.join(cmd[1:])}` exited with {code}"
                    for other in self.running:
                        other.terminate()
                return

    def lanes(self, lanes: dict[str, list[list[str]]]) -> None:
        threads = [threading.Thread(target=self.run, args=item) for item in lanes.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


class Segments:
    """The segments of one timed run, kept in `path` (None: kept in memory only).

    Each run of the command is a segment: when it started, its wall seconds, the seconds of each
    phase, the commit and its load samples. `beat` brings the current segment up to date and
    rewrites the file whole, so a process killed between beats loses at most the last minute.
    A finished run's file is not resumed: the next command starts a new one.
    """

    FILE = "recompute_segments.json"

    def __init__(self, path: Path | None, before: dict[str, int], commit: str) -> None:
        self.path = path
        past = json.loads(path.read_text()) if path is not None and path.exists() else []
        self.past: list[dict[str, Any]] = [] if past and past[-1]["finished"] else past
        self.lock = threading.Lock()
        self.t0 = self.phase_t0 = time.monotonic()
        self.phase: str | None = None
        self.now: dict[str, Any] = {
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "seconds": 0.0,
            "commit": commit,
            "source": "this script, each minute",
            "records_before": before,
            "phase_seconds": {},
            "load": {"samples": 0, "sum": 0.0, "max": 0.0},
            "finished": False,
        }

    def beat(
        self, load: float | None = None, phase: str | None = None, finished: bool = False
    ) -> None:
        """Add a load sample and/or move to `phase`, then write the file."""
        with self.lock:
            t = time.monotonic()
            if self.phase is not None:
                spent = self.now["phase_seconds"]
                spent[self.phase] = spent.get(self.phase, 0.0) + t - self.phase_t0
            self.phase_t0 = t
            self.phase = phase if phase is not None else self.phase
            self.now["seconds"] = t - self.t0
            if load is not None:
                samples = self.now["load"]
                samples["samples"] += 1
                samples["sum"] += load
                samples["max"] = max(samples["max"], load)
            self.now["finished"] = finished
            if self.path is not None:
                write_json(self.path, [*self.past, self.now])

    def summary(self) -> dict[str, Any]:
        """The whole run: wall and phase seconds summed over segments, the records before the
        first one, the load over the segments that sampled it, and each segment in short."""
        segs = [*self.past, self.now]
        phases: Counter[str] = Counter()
        for seg in segs:
            phases.update(seg["phase_seconds"])
        n = sum(seg["load"]["samples"] for seg in segs)
        load = (
            {
                "samples": n,
                "mean": sum(seg["load"]["sum"] for seg in segs) / n,
                "max": max(seg["load"]["max"] for seg in segs),
                "unsampled_seconds": sum(s["seconds"] for s in segs if not s["load"]["samples"]),
            }
            if n
            else {}
        )
        return {
            "wall_seconds": sum(seg["seconds"] for seg in segs),
            "phase_seconds": dict(phases),
            "records_before": segs[0]["records_before"],
            "load": load,
            "segments": [
                {k: seg[k] for k in ("started", "seconds", "commit", "source")}
                | {"load_samples": seg["load"]["samples"]}
                for seg in segs
            ],
        }


class LoadSampler(threading.Thread):
    """Hands the 1-minute load average to `segments` every `every` seconds until stopped."""

    def __init__(self, segments: Segments, every: float = LOAD_EVERY_S) -> None:
        super().__init__(daemon=True)
        self.segments = segments
        self.every = every
        self.done = threading.Event()

    def run(self) -> None:
        while True:
            self.segments.beat(load=os.getloadavg()[0])
            if self.done.wait(self.every):
                return


def records_by_kind(store: Store) -> dict[str, int]:
    if not store.root.is_dir():
        return {}
    return dict(sorted(Counter(r.kind for r in store.records()).items()))


def link_base_models(cache: Path) -> None:
    """Link the converted base models of the usual cache into `cache` (a scratch one)."""
    source = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    for name in BASE_MODELS:
        if (source / name).is_dir() and not (cache / name).exists():
            (cache / name).symlink_to((source / name).resolve())


def commit() -> str:
    found = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    head = found.stdout.strip() or "unknown"
    return head + ("-modified" if dirty.stdout.strip() else "")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lanes", type=int, default=2, help="processes of one thread each")
    parser.add_argument("--store", type=Path, help="the records' folder (default: results/)")
    parser.add_argument("--cache-dir", type=Path, help="built models' folder (a scratch cache)")
    parser.add_argument(
        "--summary", action="store_true", help="write a recompute_run record into results/"
    )
    parser.add_argument("--log", type=Path, help="also write the output here")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args()
    if args.lanes < 1:
        parser.error(f"--lanes takes a positive number, got {args.lanes}")
    book = Store.book()
    store = Store.book(args.store) if args.store else book
    if args.summary and store.root.resolve() == book.root.resolve():
        parser.error("--summary times a recompute into another store: give --store DIR")
    steps = plan(args.lanes)
    if args.dry_run:
        for name, commands in steps.items():
            for cmd in commands:
                print(f"[{name}] {' '.join(cmd[1:])}")
        return

    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    env[RESULTS_ENV] = str(store.root.resolve())
    if args.cache_dir:
        link_base_models(args.cache_dir)
        env["SLIMLLM_CACHE_DIR"] = str(args.cache_dir.resolve())
    store.root.mkdir(parents=True, exist_ok=True)
    segments = Segments(
        store.root / Segments.FILE if args.summary else None, records_by_kind(store), commit()
    )
    log_path = args.log or Path(os.devnull)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sampler = LoadSampler(segments)
    sampler.start()
    with log_path.open("a") as log:
        runner = Runner(env, log)
        lanes = {k: v for k, v in steps.items() if k.startswith("lane")}
        for phase, work in (("lanes", lanes), *((p, {p: steps[p]}) for p in ("alone", "assemble"))):
            segments.beat(phase=phase)
            runner.lanes(work)
            if runner.failed:
                sampler.done.set()
                segments.beat()
                sys.exit(f"recompute stopped: {runner.failed}; run the same command to resume")
    sampler.done.set()
    sampler.join()
    segments.beat(finished=True)
    run = segments.summary()
    before = run["records_before"]
    after = records_by_kind(store)
    made = {k: n - before.get(k, 0) for k, n in after.items() if n > before.get(k, 0)}
    hours = segments.now["seconds"] / 3600, run["wall_seconds"] / 3600
    print(
        f"done: {hours[0]:.2f} h this time, {hours[1]:.2f} h in {len(run['segments'])}"
        f" segment(s); new records: {made or 'none'}"
    )
    if not args.summary:
        return
    config = {
        "commit": commit(),
        "lanes": args.lanes,
        "steps": {name: [" ".join(c[1:]) for c in cmds] for name, cmds in steps.items()},
    }
    result = {
        **run,
        "empty_at_start": not before,
        "records_made": made,
        "agreement": agreement(book, store).to_dict(),
    }
    record = book.put("recompute_run", config, result, seconds=run["wall_seconds"], replace=True)
    print(f"recompute_run record: {record.path}")


if __name__ == "__main__":
    main()
