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

    python benchmarks/recompute_book.py --dry-run       # the commands, lane by lane
    python benchmarks/recompute_book.py                 # what results/ lacks (make results)
    python benchmarks/recompute_book.py --store /tmp/rc/results --cache-dir /tmp/rc/cache --summary
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

from slimllm.experiments.recompute import agreement
from slimllm.experiments.store import RESULTS_ENV, Store
from slimllm.util.files import cache_dir

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


class LoadSampler(threading.Thread):
    """The 1-minute load average every `every` seconds until stopped."""

    def __init__(self, every: float = LOAD_EVERY_S) -> None:
        super().__init__(daemon=True)
        self.every = every
        self.samples: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self.done.wait(self.every):
                return

    def summary(self) -> dict[str, Any]:
        s = self.samples
        return {"samples": len(s), "mean": sum(s) / len(s), "max": max(s)} if s else {}


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
    before = records_by_kind(store)
    log_path = args.log or Path(os.devnull)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sampler = LoadSampler()
    sampler.start()
    phases: dict[str, float] = {}
    start = time.monotonic()
    with log_path.open("a") as log:
        runner = Runner(env, log)
        lanes = {k: v for k, v in steps.items() if k.startswith("lane")}
        for phase, work in (("lanes", lanes), *((p, {p: steps[p]}) for p in ("alone", "assemble"))):
            t0 = time.monotonic()
            runner.lanes(work)
            phases[phase] = time.monotonic() - t0
            if runner.failed:
                sampler.done.set()
                sys.exit(f"recompute stopped: {runner.failed}; run the same command to resume")
    wall = time.monotonic() - start
    sampler.done.set()
    after = records_by_kind(store)
    made = {k: n - before.get(k, 0) for k, n in after.items() if n > before.get(k, 0)}
    print(f"done in {wall / 3600:.2f} h; new records: {made or 'none'}")
    if not args.summary:
        return
    config = {
        "commit": commit(),
        "lanes": args.lanes,
        "steps": {name: [" ".join(c[1:]) for c in cmds] for name, cmds in steps.items()},
    }
    result = {
        "wall_seconds": wall,
        "phase_seconds": phases,
        "empty_at_start": not before,
        "records_before": before,
        "records_made": made,
        "load": sampler.summary(),
        "agreement": agreement(book, store).to_dict(),
    }
    record = book.put("recompute_run", config, result, seconds=wall, replace=True)
    print(f"recompute_run record: {record.path}")


if __name__ == "__main__":
    main()
