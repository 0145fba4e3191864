"""The book page "Deploy the pruned model": rendered from the committed records, and its
commands (prune, export, run in llama.cpp) work when pointed at a tiny model."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path
from typing import Any

import gguf
import pytest

from slimllm.cli import main
from slimllm.deploy.page import PAGE_KINDS, newest, render
from slimllm.experiments.store import Store
from tests.helpers import ROOT, small_calibration_argv, write_novels

PAGE = ROOT / "book" / "deploy.md"


def _blocks(language: str) -> list[str]:
    """The page's fenced code blocks in `language`."""
    return re.findall(rf"```{language}\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)


def _command(program: str, subcommand: str) -> list[str]:
    """The page's one `program subcommand ...` line, split as a shell would."""
    lines = [
        line
        for block in _blocks("bash")
        for line in block.splitlines()
        if line.startswith(f"{program} {subcommand} ")
    ]
    assert len(lines) == 1, lines
    return shlex.split(lines[0])[1:]


def _option(argv: list[str], name: str, value: str) -> list[str]:
    """`argv` with the value after `name` replaced."""
    i = argv.index(name)
    return [*argv[: i + 1], value, *argv[i + 2 :]]


def test_page_is_rendered_from_the_committed_records() -> None:
    store = Store.book(ROOT / "results")
    records = [newest(r.to_json() for r in store.records(kind)) for kind in PAGE_KINDS]
    assert PAGE.read_text() == render(*records), "run `python benchmarks/round_to.py --page-only`"


@pytest.fixture(scope="module")
def page_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The page's prune and export commands run on tiny-gqa: the GGUF and what export printed."""
    tmp = tmp_path_factory.mktemp("page")
    data = write_novels(tmp / "data", "A whale of a tale, told twice. " * 200)
    prune = _command("slimllm", "prune")
    assert prune[1] == "smollm2-135m"
    prune = _option([prune[0], "tiny-gqa", *prune[2:]], "--out", str(tmp / "pruned"))
    assert main([*prune, *small_calibration_argv(data)]) == 0
    export = _command("slimllm", "export")
    assert export[1] == "p50"  # the folder prune wrote
    export = _option([export[0], str(tmp / "pruned"), *export[2:]], "--gguf", str(tmp / "p.gguf"))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(export) == 0
    return tmp / "p.gguf", printed.getvalue()


def test_page_export_command(page_export: tuple[Path, str]) -> None:
    path, printed = page_export
    assert f"wrote {path} (q8_0" in printed
    reader = gguf.GGUFReader(path)
    assert reader.fields["general.architecture"].contents() == "deci"
    assert "general.slimllm.record" in reader.fields


def test_page_python_snippet_runs_in_llama_cpp(
    page_export: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("xllamacpp", reason="the llama.cpp runtime wheel is missing")
    (snippet,) = _blocks("python")
    assert '"p50-q8_0.gguf"' in snippet
    code = snippet.replace('"p50-q8_0.gguf"', repr(str(page_export[0])))
    namespace: dict[str, Any] = {}
    exec(compile(code, str(PAGE), "exec"), namespace)
    reply = namespace["reply"]
    # llama.cpp samples (temperature 0.8, a random seed), so the tiny model may draw its
    # end-of-text token before the 16th: up to 16 tokens, at least one.
    assert 1 <= reply["usage"]["completion_tokens"] <= 16
    assert capsys.readouterr().out == reply["choices"][0]["text"] + "\n"
