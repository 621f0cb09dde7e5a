"""The README's promises: its Python example runs and prints what it says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_api_example_runs_the_seed_story():
    (example,) = python_blocks(README.read_text())
    assert len(example.strip().splitlines()) <= 22  # "the Python API in 20 lines"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(example, "README.md", "exec"), {})  # our own README, not user input
    printed = out.getvalue()
    assert "stopped: b3 = 2.61 after 10 steps" in printed
    assert "-15.6551" in printed  # the first slope, dSSR/db3 at b3 = 0
    assert "dSSR/dw3 = dSSR/dpredicted x dpredicted/dw3" in printed


def test_the_quick_start_names_exactly_the_two_make_targets():
    text = README.read_text()
    quick = text.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = re.findall(r"^make (\w+)", quick, flags=re.M)
    assert commands == ["demo", "test"]
    makefile = (README.parent / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, flags=re.M)
    assert re.search(r"^test:", makefile, flags=re.M)


def test_the_documented_commands_exist():
    import argparse

    from chainrule.cli import build_parser

    text = README.read_text()
    block = text.split("## The command line", 1)[1].split("```", 2)[1]
    documented = {line.split()[1] for line in block.splitlines() if line.startswith("chainrule ")}
    (commands,) = [
        action.choices
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    ]
    assert documented == {
        "demo", "predict", "run", "explain", "scan", "scenarios", "quiz", "plot", "new", "serve"
    }  # fmt: skip
    assert documented <= set(commands)
