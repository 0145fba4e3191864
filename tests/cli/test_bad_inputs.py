"""Bad inputs across every subcommand and the Python API: each is refused with exit code 2 and
one line on stderr that names the argument or file and what was expected, before any work, and
leaves every file as it was (nothing written, replaced or left half-written).

The command-line cases run `slimllm.cli.main` in-process on tiny models; `{name}` in an argument
is a path of the `world` fixture. Interrupts (exit 130, one line, previous output intact) are
at the end.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from transformers import PreTrainedModel

import slimllm.cli.eval as eval_cmd
import slimllm.cli.prune as prune_cmd
from slimllm.cli import main
from slimllm.experiments import recipes
from slimllm.experiments.runners import perplexity_config
from slimllm.experiments.store import RESULTS_ENV, Store
from slimllm.method.config import PruneConfig
from slimllm.models.io import load_pruned, save_pruned
from slimllm.models.loaders import ModelNotAvailableError, byte_tokenizer, load_model, tiny_model
from slimllm.util.files import write_json
from tests.helpers import ROOT, pruned_gqa, write_novels

SHARED = Path(os.environ.get("SLIMLLM_DATA_DIR") or ROOT.parent / "shared" / "data")

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
needs_data = pytest.mark.skipif(not SHARED.is_dir(), reason=f"no data folder at {SHARED}")


def _truncate(folder: Path) -> None:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Folders and files every case may name: good models to misuse and broken ones."""
    root = tmp_path_factory.mktemp("world")
    tokenizer = byte_tokenizer()
    dense = root / "dense"
    tiny_model("tiny-gqa").save_pretrained(dense)
    tokenizer.save_pretrained(dense)
    pruned = pruned_gqa()
    save_pruned(pruned, tokenizer, root / "pruned", {"recipe": recipes.dense("tiny-gqa")})
    save_pruned(pruned, tokenizer, root / "norecipe", {"note": "saved without a recipe"})
    tuned = {"recipe": {**recipes.dense("tiny-gqa"), "tune": {"max_steps": 1}}}
    save_pruned(pruned, tokenizer, root / "tuned", tuned)
    for name, source in (("badjson", dense), ("nanjson", dense), ("listjson", dense)):
        shutil.copytree(source, root / name)
    (root / "badjson" / "config.json").write_text('{"model_type": "llama",')
    config = (dense / "config.json").read_text()
    (root / "nanjson" / "config.json").write_text(
        config.replace('"rms_norm_eps": 1e-06', '"rms_norm_eps": NaN')
    )
    (root / "listjson" / "config.json").write_text("[1, 2]")
    shutil.copytree(dense, root / "trunc")
    shutil.copytree(root / "pruned", root / "truncp")
    _truncate(root / "trunc")
    _truncate(root / "truncp")
    (root / "empty").mkdir()
    (root / "full").mkdir()
    (root / "full" / "keep.txt").write_text("kept")
    (root / "afile").write_text("a file, not a folder")
    alpaca = [{"instruction": f"Say {w}.", "input": "", "output": w} for w in ("a", "b") * 8]
    (root / "alpaca.json").write_text(json.dumps(alpaca))
    (root / "alpaca_bad.json").write_text('[{"instruction": "x",')
    write_novels(root / "data", "A calm sea and a ship. " * 100)
    (root / "data" / "wikitext2").mkdir()
    # Long enough that `slimllm eval` is still measuring when the subprocess test interrupts it.
    (root / "data" / "wikitext2" / "wiki.test.raw").write_text(" = Ships = \n A text . \n" * 20000)
    config = perplexity_config(recipes.dense("tiny-llama"), "wikitext2", max_windows=2)
    rec = Store(root / "store").put("perplexity", config, {"ppl": 100.0})
    assert rec.path is not None
    (root / "loose").mkdir()
    shutil.copy(rec.path, root / "loose" / "record.json")
    records = {
        "rec_list": "[]",
        "rec_lacks": json.dumps({"kind": "perplexity"}),
        "rec_nan": rec.path.read_text().replace('"max_windows": 2', '"max_windows": NaN'),
        "rec_kind": json.dumps({"kind": "mystery", "config": {}, "result": {}}),
        "rec_nomodel": json.dumps({"kind": "perplexity", "config": {"a": 1}, "result": {}}),
        "rec_bad": '{"kind": ',
    }
    for name, text in records.items():
        (root / f"{name}.json").write_text(text)
    paths = {p.name.removesuffix(".json"): str(p) for p in root.iterdir()}
    return {**paths, "w": str(root), "rec": str(rec.path), "missing": str(root / "missing")}


def snapshot(root: Path) -> dict[str, str]:
    """Every path below `root` (hidden ones too) with its content's digest."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "/"
        for p in sorted(root.rglob("*"))
    }


def run_cli(argv: list[str]) -> int:
    """main's exit code, whether it returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


PRUNE = ["prune", "tiny-gqa", "--ratio", "0.2", "--out", "{w}/out"]
EVAL = ["eval", "tiny-gqa", "--device", "cpu"]
TUNE = ["tune", "{pruned}", "--out", "{w}/tuned2", "--data", "{alpaca}", "--device", "cpu"]
BENCH = ["bench", "{pruned}", "--device", "cpu"]
EXPORT = ["export", "{pruned}", "--gguf", "{w}/m.gguf"]

#: (argv, what the one line must say: the argument or file, and what was expected).
CASES: list[tuple[list[str], list[str]]] = [
    ([], ["required: command"]),
    (["frob"], ["invalid choice: 'frob'"]),
    # prune: numbers
    (["prune", "tiny-gqa", "--out", "{w}/out"], ["required: --ratio"]),
    ([*PRUNE[:3], "1.5", *PRUNE[4:]], ["argument --ratio: must be in [0, 1), got 1.5"]),
    ([*PRUNE[:3], "nan", *PRUNE[4:]], ["argument --ratio: must be a finite number, got nan"]),
    ([*PRUNE[:3], "inf", *PRUNE[4:]], ["argument --ratio: must be a finite number, got inf"]),
    ([*PRUNE[:3], "abc", *PRUNE[4:]], ["argument --ratio: expected a number, got 'abc'"]),
    ([*PRUNE, "--alpha", "1e308"], ["argument --alpha: must be in (0, 100], got 1e+308"]),
    ([*PRUNE, "--alpha", "nan"], ["argument --alpha: must be a finite number"]),
    ([*PRUNE, "--alpha=-1"], ["argument --alpha: must be in (0, 100]"]),
    ([*PRUNE, "--max-layer-ratio", "2"], ["argument --max-layer-ratio: must be in (0, 1]"]),
    ([*PRUNE, "--max-layer-ratio=-inf"], ["argument --max-layer-ratio: must be a finite"]),
    ([*PRUNE, "--keep-lowest", "1.5"], ["argument --keep-lowest: must be in [0, 1)"]),
    ([*PRUNE, "--layers", "0"], ["argument --layers: must be an integer >= 1, got 0"]),
    ([*PRUNE, "--layers", "99"], ["--layers 99: the model has 3 layers"]),
    ([*PRUNE, "--calib-samples", "0"], ["argument --calib-samples: must be an integer >= 1"]),
    ([*PRUNE, "--calib-seq-len", "1000"], ["--calib-seq-len is 1000 tokens", "512 positions"]),
    ([*PRUNE, "--batch-size", "0"], ["argument --batch-size: must be an integer >= 1"]),
    ([*PRUNE, "--round-to", "0"], ["argument --round-to: must be an integer >= 1"]),
    ([*PRUNE, "--seed", "1.5"], ["argument --seed: invalid int value: '1.5'"]),
    # prune: choices and options the method would ignore
    ([*PRUNE, "--method", "obs"], ["argument --method: invalid choice: 'obs'"]),
    ([*PRUNE, "--dtype", "float8"], ["argument --dtype: invalid choice: 'float8'"]),
    ([*PRUNE, "--gqa-mode", "both"], ["argument --gqa-mode: invalid choice: 'both'"]),
    ([*PRUNE, "--method", "random", "--alpha", "5"], ["--alpha does not apply to --method random"]),
    ([*PRUNE, "--method", "flap", "--no-greedy"], ["--no-greedy does not apply to --method flap"]),
    (
        [*PRUNE, "--method", "magnitude-sp", "--calib-samples", "4"],
        ["--calib-samples does not apply to --method magnitude-sp"],
    ),
    (
        [*PRUNE, "--method", "random", "--calib-data", "own"],
        ["--calib-data own: random reads no calibration data"],
    ),
    (
        [*PRUNE, "--method", "flap", "--calib-data", "own", "--data-dir", "{data}"],
        ["'wikitext2-train'", "{data}/wikitext2/wiki.train.raw"],
    ),
    # prune: the model and the output
    (["prune", "{dense}", "--ratio", "0.2", "--out", "{dense}"], ["--out {dense} is the model"]),
    (
        ["prune", "{dense}", "--ratio", "0.2", "--out", "{dense}", "--overwrite"],
        ["--out {dense} is the model folder {dense}"],
    ),
    (
        ["prune", "{dense}", "--ratio", "0.2", "--out", "{dense}/sub", "--overwrite"],
        ["--out {dense}/sub is inside the model folder"],
    ),
    (
        ["prune", "{dense}", "--ratio", "0.2", "--out", "{w}", "--overwrite"],
        ["--out {w} holds the model folder {dense}"],
    ),
    ([*PRUNE[:-1], "{afile}"], ["--out {afile} is a file; expected a folder"]),
    ([*PRUNE[:-1], "/proc/x"], ["--out /proc/x cannot be written"]),
    ([*PRUNE[:-1], "{afile}/x"], ["--out {afile}/x cannot be written: {afile} is a file"]),
    ([*PRUNE[:-1], "{full}"], ["--out {full} exists and is not empty (pass --overwrite)"]),
    (["prune", "{pruned}", *PRUNE[2:]], ["MODEL {pruned} is already pruned", "tiny-gqa"]),
    (["prune", "{badjson}", *PRUNE[2:]], ["MODEL: {badjson}/config.json is not valid JSON"]),
    (["prune", "{nanjson}", *PRUNE[2:]], ["{nanjson}/config.json holds NaN", "rms_norm_eps"]),
    (["prune", "{listjson}", *PRUNE[2:]], ["{listjson}/config.json is not a JSON object"]),
    (["prune", "{trunc}", *PRUNE[2:]], ["{trunc}: the weights are not readable safetensors"]),
    (["prune", "{empty}", *PRUNE[2:]], ["{empty} is not a model folder (it has no config.json)"]),
    (["prune", "{missing}", *PRUNE[2:]], ["unknown model '{missing}'"]),
    (["prune", "org/none", *PRUNE[2:]], ["model 'org/none' is not in the local Hugging Face"]),
    ([*PRUNE, "--device", "foo"], ["--device 'foo': expected cpu, cuda or cuda:N"]),
    ([*PRUNE, "--data-dir", "{missing}"], ["argument --data-dir: '{missing}' is not a directory"]),
    ([*PRUNE, "--results-dir", "/proc/x"], ["--results-dir /proc/x cannot be written"]),
    ([*PRUNE, "--results-dir", "{afile}"], ["--results-dir {afile} is a file"]),
    # eval: modes
    ([*EVAL, "--ppl", "c4"], ["argument --ppl: choose from wikitext2, ptb, ptb-valid"]),
    ([*EVAL, "--ppl", "wikitext2", "--limit", "5"], ["--limit only with --zeroshot"]),
    ([*EVAL, "--tasks", "piqa"], ["--tasks only with --zeroshot"]),
    ([*EVAL, "--seed", "3"], ["--seed only with --zeroshot"]),
    ([*EVAL, "--zeroshot-batch-size", "4"], ["--zeroshot-batch-size only with --zeroshot"]),
    ([*EVAL, "--zeroshot", "--max-windows", "2"], ["--max-windows only with --ppl"]),
    ([*EVAL, "--zeroshot", "--protocol", "lineage-128"], ["--protocol only with --ppl"]),
    ([*EVAL, "--zeroshot", "--batch-size", "4"], ["--batch-size only with --ppl"]),
    ([*EVAL, "--zeroshot", "--limit", "0"], ["argument --limit: must be an integer >= 1"]),
    ([*EVAL, "--zeroshot", "--tasks", "boolq,mmlu"], ["argument --tasks: unknown task(s) mmlu"]),
    ([*EVAL, "--max-windows", "0"], ["argument --max-windows: must be an integer >= 1"]),
    ([*EVAL, "--dtype", "float8"], ["argument --dtype: invalid choice: 'float8'"]),
    # eval: lengths, outputs, models
    (
        [*EVAL, "--protocol", "sparsegpt-2048"],
        ["--protocol sparsegpt-2048's window is 2048 tokens", "512 positions"],
    ),
    (
        ["eval", "{pruned}", "--protocol", "sparsegpt-2048", "--device", "cpu"],
        ["--protocol sparsegpt-2048's window is 2048 tokens"],
    ),
    ([*EVAL, "--json", "/proc/x.json"], ["--json /proc/x.json cannot be written"]),
    ([*EVAL, "--json", "{empty}"], ["--json {empty} is a folder; expected a file"]),
    ([*EVAL, "--json", "{afile}/r.json"], ["--json {afile}/r.json cannot be written"]),
    ([*EVAL, "--results-dir", "{afile}"], ["--results-dir {afile} is a file"]),
    (["eval", "{badjson}"], ["MODEL: {badjson}/config.json is not valid JSON"]),
    (["eval", "{nanjson}"], ["{nanjson}/config.json holds NaN or infinity at rms_norm_eps"]),
    (["eval", "{trunc}", "--device", "cpu"], ["{trunc}: the weights are not readable"]),
    (["eval", "{truncp}", "--device", "cpu"], ["{truncp}: the weights are not readable"]),
    (["eval", "{empty}"], ["{empty} is not a model folder (it has no config.json)"]),
    (["eval", "{missing}"], ["unknown model '{missing}'"]),
    ([*EVAL[:2], "--device", "cuda:x"], ["--device 'cuda:x': expected cpu, cuda or cuda:N"]),
    # tune
    (
        [*TUNE[:3], "{pruned}", *TUNE[4:], "--overwrite"],
        ["--out {pruned} is the model folder {pruned}"],
    ),
    ([*TUNE[:3], "{pruned}/x", *TUNE[4:]], ["--out {pruned}/x is inside the model folder"]),
    ([*TUNE[:3], "{afile}", *TUNE[4:]], ["--out {afile} is a file; expected a folder"]),
    ([*TUNE, "--lr", "nan"], ["argument --lr: must be a finite number, got nan"]),
    ([*TUNE, "--lr", "inf"], ["argument --lr: must be a finite number, got inf"]),
    ([*TUNE, "--lr", "0"], ["argument --lr: must be > 0, got 0.0"]),
    ([*TUNE, "--epochs", "inf"], ["argument --epochs: must be a finite number"]),
    ([*TUNE, "--lora-dropout", "1.5"], ["argument --lora-dropout: must be in [0, 1)"]),
    ([*TUNE, "--warmup-steps", "-1"], ["argument --warmup-steps: must be an integer >= 0"]),
    ([*TUNE, "--max-steps", "0"], ["argument --max-steps: must be an integer >= 1"]),
    ([*TUNE, "--preset", "gpu"], ["argument --preset: invalid choice: 'gpu'"]),
    ([*TUNE, "--micro-batch-size", "5"], ["must be a multiple of micro_batch_size (5)"]),
    ([*TUNE, "--cutoff-len", "1000"], ["--cutoff-len is 1000 tokens", "512 positions"]),
    ([*TUNE[:5], "{missing}.json", *TUNE[6:]], ["alpaca data file '{missing}.json' does not"]),
    ([*TUNE[:5], "{alpaca_bad}", *TUNE[6:]], ["'{alpaca_bad}' is not valid JSON"]),
    (["tune", "{empty}", *TUNE[2:]], ["{empty} is not a model directory: it has no config"]),
    (["tune", "{badjson}", *TUNE[2:]], ["MODEL: {badjson}/config.json is not valid JSON"]),
    (["tune", "{tuned}", *TUNE[2:]], ["MODEL {tuned} is already tuned"]),
    (["tune", "{missing}", *TUNE[2:]], ["model '{missing}' is not a directory"]),
    # bench
    ([*BENCH, "--repeats", "0"], ["argument --repeats: must be an integer >= 1"]),
    ([*BENCH, "--warmup", "-1"], ["--warmup must be >= 0, got -1"]),
    ([*BENCH, "--driver", "fast"], ["argument --driver: invalid choice: 'fast'"]),
    (["bench", "{dense}"], ["{dense} is not a slimllm pruned model"]),
    (["bench", "{missing}"], ["{missing} is not a model folder: it has no config.json"]),
    (["bench", "{badjson}"], ["DIR: {badjson}/config.json is not valid JSON"]),
    (["bench", "{norecipe}"], ["{norecipe} has no recipe naming its base model; pass --dense"]),
    ([*BENCH, "--dense", "tiny-llama"], ["--dense tiny-llama is not the architecture"]),
    ([*BENCH, "--dense", "{badjson}"], ["--dense: {badjson}/config.json is not valid JSON"]),
    ([*BENCH, "--prefill-len", "1000"], ["--prefill-len is 1000 tokens", "512 positions"]),
    (
        [*BENCH, "--prompt-len", "500", "--new-tokens", "100"],
        ["--prompt-len + --new-tokens is 600 tokens"],
    ),
    ([*BENCH, "--json", "/proc/x.json"], ["--json /proc/x.json cannot be written"]),
    # export
    (["export", "{missing}", *EXPORT[2:]], ["{missing} is not a directory"]),
    (["export", "{badjson}", *EXPORT[2:]], ["FOLDER: {badjson}/config.json is not valid JSON"]),
    (["export", "{truncp}", *EXPORT[2:]], ["{truncp}: the weights are not readable"]),
    ([*EXPORT[:3], "/proc/x.gguf"], ["--gguf /proc/x.gguf cannot be written"]),
    ([*EXPORT[:3], "{empty}"], ["--gguf {empty} is a folder; expected a file"]),
    ([*EXPORT[:3], "{afile}"], ["--gguf {afile} exists (pass --overwrite)"]),
    ([*EXPORT, "--type", "q4"], ["argument --type: invalid choice: 'q4'"]),
    # rerun
    (["rerun", "{missing}"], ["RECORD '{missing}' is not a file"]),
    (["rerun", "{rec_bad}"], ["{rec_bad}: not a readable results record"]),
    (["rerun", "{rec_list}"], ["'{rec_list}' is not a results record (not a JSON object)"]),
    (["rerun", "{rec_lacks}"], ["'{rec_lacks}' is not a results record (lacks"]),
    (["rerun", "{rec_nan}"], ["RECORD {rec_nan}: its config's max_windows is NaN"]),
    (["rerun", "{rec_kind}"], ["records of kind 'mystery' cannot be re-run"]),
    (["rerun", "{rec_nomodel}"], ["RECORD {rec_nomodel} lacks 'model'"]),
    (["rerun", "{loose}/record.json", "--write"], ["is not in a store's perplexity/ folder"]),
    (["rerun", "{rec}", "--device", "tpu"], ["--device 'tpu': expected cpu, cuda or cuda:N"]),
    # tasks
    (["tasks", "{afile}"], ["DIR {afile} is a file; expected a folder"]),
    (["tasks", "/proc/x"], ["DIR /proc/x cannot be written"]),
    (["tasks", "{w}/y", "--tasks", "squad"], ["argument --tasks: unknown task(s) squad"]),
    (["tasks", "{w}/y", "--limit", "0"], ["argument --limit: must be an integer >= 1"]),
    (["tasks", "{w}/y", "--data-dir", "{empty}"], ["boolq/dev.jsonl"]),
]

#: Cases that read the shared data folder.
DATA_CASES: list[tuple[list[str], list[str]]] = [
    (
        [*EVAL, "--zeroshot", "--tasks", "piqa", "--limit", "500", "--data-dir", str(SHARED)],
        ["--zeroshot: piqa item", "more than the model's 512 positions", "out of --tasks"],
    ),
]

#: A GPU asked for where there is none: one case per command that takes --device.
CUDA_CASES = [
    [*PRUNE, "--device", "cuda"],
    [*EVAL[:2], "--device", "cuda"],
    [*TUNE[:-1], "cuda"],
    [*BENCH[:-1], "cuda"],
    ["rerun", "{rec}", "--device", "cuda:1"],
]


def _params() -> list[object]:
    cuda = [(argv, ["this machine has no CUDA device"]) for argv in CUDA_CASES]
    return [
        pytest.param(argv, says, marks=marks, id=" ".join(argv) or "(nothing)")
        for cases, marks in ((CASES, ()), (DATA_CASES, needs_data), (cuda, no_cuda))
        for argv, says in cases
    ]


@pytest.mark.parametrize(("argv", "says"), _params())
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str],
    says: list[str],
    world: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = Path(world["w"])
    before = snapshot(root)
    capsys.readouterr()
    code = run_cli([arg.format(**world) for arg in argv])
    lines = capsys.readouterr().err.splitlines()
    assert code == 2, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("slimllm") and ": error: " in lines[0]
    for text in says:
        assert text.format(**world) in lines[0]
    assert snapshot(root) == before
    assert not any(Path(os.environ[RESULTS_ENV]).rglob("*"))


#: (what the one-line error says, with `{name}` a `world` path; the call that raises it).
API_CASES: list[tuple[str, Callable[[dict[str, str]], object]]] = [
    ("ratio must be a finite number, got '0.2'", lambda w: PruneConfig(ratio="0.2").validate()),
    ("alpha must be in (0, 100], got 1e+308", lambda w: PruneConfig(alpha=1e308).validate()),
    (
        "calib_samples must be an integer, got 2.5",
        lambda w: PruneConfig(calib_samples=2.5).validate(),
    ),
    (
        "greedy_search must be True or False, got 'no'",
        lambda w: PruneConfig(greedy_search="no").validate(),
    ),
    ("a record kind is lower-case letters", lambda w: Store(w["w"]).put("../../x", {}, {})),
    (
        "the k configuration's a is NaN or infinite",
        lambda w: Store(w["w"]).put("k", {"a": float("nan")}, {}),
    ),
    ("ppl is NaN or infinite", lambda w: Store(w["w"]).put("k", {}, {"ppl": float("inf")})),
    (
        "{w}/n.json: x is NaN or infinite, which JSON cannot hold",
        lambda w: write_json(Path(w["w"]) / "n.json", {"x": float("nan")}),
    ),
    ("{rec_bad}: not a readable results record", lambda w: Store.read(w["rec_bad"])),
    ("{trunc}: the weights are not readable safetensors", lambda w: load_model(w["trunc"])),
    ("{truncp}: the weights are not readable safetensors", lambda w: load_pruned(w["truncp"])),
    ("unknown tiny model 'tiny-x'", lambda w: tiny_model("tiny-x")),
    ("dtype must be a torch.dtype or one of", lambda w: load_model("tiny-gqa", dtype="float8")),
]


@pytest.mark.parametrize(("says", "call"), API_CASES, ids=[says for says, _ in API_CASES])
def test_bad_api_input_is_one_line(
    says: str, call: Callable[[dict[str, str]], object], world: dict[str, str]
) -> None:
    root = Path(world["w"])
    before = snapshot(root)
    with pytest.raises((ValueError, ModelNotAvailableError)) as err:
        call(world)
    assert says.format(**world) in str(err.value) and "\n" not in str(err.value)
    assert snapshot(root) == before


def _interrupt(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt


def _half_save(self: object, folder: str | Path, *args: object, **kwargs: object) -> None:
    """Ctrl-C with the weights written part-way."""
    (Path(folder) / "model.safetensors").write_bytes(b"part")
    raise KeyboardInterrupt


OVERWRITE = [*PRUNE[:-1], "{full}", "--overwrite"]


@pytest.mark.parametrize(
    ("where", "name", "stop", "argv", "left"),
    [
        (prune_cmd, "prune_with", _interrupt, OVERWRITE, "--out {full} left as it was"),
        (PreTrainedModel, "save_pretrained", _half_save, OVERWRITE, "--out {full} left"),
        (eval_cmd, "perplexity", _interrupt, [*EVAL, "--json", "{afile}"], "--json {afile} left"),
    ],
    ids=["prune: while pruning", "prune: while saving", "eval: while measuring"],
)
def test_ctrl_c_is_one_line_and_leaves_the_output(
    where: object,
    name: str,
    stop: Callable[..., None],
    argv: list[str],
    left: str,
    world: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = Path(world["w"])
    before = snapshot(root)
    monkeypatch.setattr(where, name, stop)
    args = [arg.format(**world) for arg in argv] + ["--data-dir", world["data"]]
    if argv[0] == "prune":
        args += ["--calib-samples", "2", "--calib-seq-len", "16", "--device", "cpu"]
    capsys.readouterr()
    assert run_cli(args) == 130
    lines = [line for line in capsys.readouterr().err.splitlines() if "it/s" not in line]
    assert lines[-1].startswith(f"slimllm {argv[0]}: interrupted; ")
    assert left.format(**world) in lines[-1]
    assert not any("Traceback" in line for line in lines)
    assert snapshot(root) == before


def test_a_real_ctrl_c_in_a_subprocess(world: dict[str, str]) -> None:
    """SIGINT while `slimllm eval` measures: exit 130, one line, --json as it was."""
    report = Path(world["afile"])
    argv = [sys.executable, "-m", "slimllm.cli", "eval", "tiny-gqa", "--ppl", "wikitext2"]
    argv += ["--device", "cpu", "--dtype", "float32", "--json", str(report)]
    env = {**os.environ, "SLIMLLM_DATA_DIR": world["data"], "TQDM_DISABLE": "1"}
    before = snapshot(Path(world["w"]))
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )
    assert proc.stdout is not None
    proc.stdout.readline()  # "dtype ...": past the imports, inside the command
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    # A progress bar may already be on stderr when the signal lands; the rest is one line.
    lines = [x for x in err.splitlines() if x.strip() and "batch/s" not in x and "it/s" not in x]
    assert len(lines) == 1, err
    (line,) = lines
    assert line.startswith("slimllm eval: interrupted; ")
    assert line.endswith(f"--json {report} left as it was")
    assert snapshot(Path(world["w"])) == before


# The child interrupts itself the moment slimllm.cli starts importing torch (the slow part), so
# the signal lands inside the imports on any machine, however fast.
_SIGINT_DURING_IMPORTS = """
import os, signal, sys
class InterruptOnTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            os.kill(os.getpid(), signal.SIGINT)
        return None
sys.meta_path.insert(0, InterruptOnTorch())
from slimllm.cli import main
print("imports finished")
"""


def test_ctrl_c_while_the_cli_imports_is_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _SIGINT_DURING_IMPORTS],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 130, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == ["slimllm: interrupted while loading; nothing was written"]


def test_the_cli_leaves_the_ctrl_c_handler_as_it_found_it() -> None:
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
