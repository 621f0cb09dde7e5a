"""Tests for chainrule.lesson and the lessons / lesson commands: the built-in path renders
with the videos' numbers (computed by the engine), a lesson plays in a terminal, and a
mistake in a lesson file is one line naming the file, the line and the block."""

from __future__ import annotations

import doctest
import fcntl
import os
import pty
import re
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

import chainrule.lesson
import chainrule.lesson.document
import chainrule.lesson.player
import chainrule.lesson.quantity
import chainrule.lesson.render
from chainrule.cli import main
from chainrule.errors import ChainruleError
from chainrule.lesson import (
    builtin_lessons,
    load_lesson,
    parse_lesson,
    parse_quantity,
    perform_all,
    render_markdown,
)
from chainrule.lesson.quantity import Workbench

DOCS = Path(__file__).parent.parent / "docs" / "lessons.md"
LESSONS = Path(chainrule.lesson.__file__).parent.parent / "lessons"

#: The built-in path, in order.
PATH = [
    "inside-the-black-box",
    "main-ideas",
    "three-parameters",
    "all-parameters",
    "relu-in-action",
    "multiple-inputs-and-outputs",
    "argmax-and-softmax",
    "cross-entropy",
    "backpropagation-with-cross-entropy",
]

#: The numbers each lesson must show at the videos' precision (StatQuest's figures; the
#: ReLU final bias -16.0019 is the PyTorch tutorial's printed result).
PUBLISHED = {
    "inside-the-black-box": ["2.14", "2.25", "-2.93", "1.29", "1.53", "3.49", "-0.02"],
    "main-ideas": ["20.4", "-15.66", "-1.57", "1.57", "-6.26", "2.61"],
    "three-parameters": ["0.10", "0.50", "-0.19"],
    "all-parameters": ["0.76"],
    "relu-in-action": ["1.70", "-0.85", "-40.8", "12.6", "0.00", "2.70", "-16.0", "-16.0019"],
    "argmax-and-softmax": ["0.68", "0.11", "0.21"],
    "cross-entropy": ["0.56", "0.54", "0.65", "1.76", "1.75"],
}

#: Numbers that only the engine may write: none of them is typed in a lesson's file.
COMPUTED_ONLY = {
    "inside-the-black-box": ["2.25", "-2.93", "3.49", "-0.02"],
    "argmax-and-softmax": ["0.68", "0.11", "0.21"],
    "cross-entropy": ["0.56", "0.54", "0.65", "1.76", "1.75"],
    "relu-in-action": ["-16.0"],
    "main-ideas": ["-15.66", "2.61", "-6.26"],
}


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "module",
    [
        chainrule.lesson,
        chainrule.lesson.document,
        chainrule.lesson.player,
        chainrule.lesson.quantity,
        chainrule.lesson.render,
    ],
)
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# --- the built-in path -------------------------------------------------------------------


@pytest.fixture(scope="module")
def handouts(tmp_path_factory):
    """Every built-in lesson rendered once as Markdown and as HTML (and HTML without answers)."""
    pytest.importorskip("matplotlib")
    pytest.importorskip("markdown_it")
    folder = tmp_path_factory.mktemp("handouts")
    out = {}
    for name in PATH:
        lesson = load_lesson(name)
        assert main(["lesson", name, "--render", str(folder / f"{name}.md")]) == 0
        assert main(["lesson", name, "--render", str(folder / f"{name}.html")]) == 0
        code = main(["lesson", name, "--render", str(folder / f"{name}-bare.html"), "--no-answers"])
        assert code == 0
        out[name] = {
            "lesson": lesson,
            "md": (folder / f"{name}.md").read_text(),
            "html": (folder / f"{name}.html").read_text(),
            "bare": (folder / f"{name}-bare.html").read_text(),
            "folder": folder,
        }
    return out


def test_lessons_lists_the_path_in_order(capsys):
    code, out, _ = run_cli(["lessons"], capsys)
    assert code == 0
    names = [line.split()[1] for line in out.splitlines() if re.match(r"^\s*\d+\. ", line)]
    assert names == PATH
    assert [info.position for info in builtin_lessons()] == list(range(1, 10))
    assert "1. inside-the-black-box" in out and "Inside the black box" in out


@pytest.mark.parametrize("name", PATH)
def test_every_lesson_renders_with_figures_and_answer_key(handouts, name):
    h = handouts[name]
    lesson = h["lesson"]
    figures = [b for b in lesson.blocks if b.kind == "figure"]
    checkpoints = [b for b in lesson.blocks if b.kind == "checkpoint"]
    commands = [b for b in lesson.blocks if b.kind == "command"]
    assert checkpoints, "each lesson asks the learner something"
    assert lesson.title in h["md"] and "{{" not in h["md"] and "{{" not in h["html"]
    # Markdown: figures beside the file, linked by name; HTML: figures inside, nothing fetched
    for block in figures:
        image = h["folder"] / f"{name}-figure-{block.number}.png"
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({image.name})" in h["md"]
    assert h["html"].count('src="data:image/png;base64,') == len(figures)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", h["html"])
    for block in commands:
        assert f"$ chainrule {' '.join(block.argv)}" in h["md"]
    # exercises, with the key at the end unless --no-answers
    assert h["md"].count("**Exercise ") == len(checkpoints)
    assert "## Answers" in h["md"] and "<h2>Answers</h2>" in h["html"]
    assert "Answers" not in h["bare"] and h["bare"].count("Exercise ") == len(checkpoints)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_the_videos_numbers_appear_at_their_precision(handouts, name):
    for text in (handouts[name]["md"], handouts[name]["html"]):
        words = set(re.findall(r"-?\d+\.\d+%?", text))
        missing = [n for n in PUBLISHED[name] if n not in words]
        assert not missing, f"{name}: {missing} not in the render"


@pytest.mark.parametrize("name", sorted(COMPUTED_ONLY))
def test_the_numbers_are_computed_not_typed(name):
    source = next(LESSONS.glob(f"*-{name}.md")).read_text()
    words = set(re.findall(r"-?\d+\.\d+", source))
    assert not [n for n in COMPUTED_ONLY[name] if n in words]


_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")
_SCENARIOS = LESSONS.parent / "scenarios"


def _settings(lesson) -> set[float]:
    """Every number a lesson sets itself: those written in its quantities' words and in
    the built-in scenario files it reads, and 0 and 1 (as in ``ln(1 + e^x)``, ``1 - p``)."""
    quantities = []
    for block in lesson.blocks:
        quantities += [inline.quantity for inline in getattr(block, "values", ())]
        quantities += [inline.quantity for inline in getattr(block, "about_values", ())]
        if block.kind == "checkpoint":
            quantities.append(block.answer)
    numbers = {0.0, 1.0}
    for quantity in quantities:
        numbers |= {float(n) for n in _NUMBER.findall(quantity.text)}
        file = _SCENARIOS / f"{quantity.scenario}.toml"
        if quantity.scenario and file.is_file():
            settings = re.sub(r"#.*", "", file.read_text())  # its comments quote results
            numbers |= {float(n) for n in _NUMBER.findall(settings)}
    return numbers


@pytest.mark.parametrize("name", PATH)
def test_checkpoint_questions_type_no_computed_number(name):
    """A number in a checkpoint's question (or its ``about``) is one the lesson set (a
    starting value, an input, a quantity's own words); a number the engine computes is a
    ``{{ ... }}``, filled in when the lesson is played."""
    lesson = load_lesson(name)
    allowed = _settings(lesson)
    for block in lesson.blocks:
        if block.kind != "checkpoint":
            continue
        for text in (block.question, block.about):
            typed = _NUMBER.findall(re.sub(r"\{\{.*?\}\}", "", text))
            stray = [n for n in typed if float(n) not in allowed]
            assert not stray, f"{name} block {block.number}: {stray} typed in {text!r}"


def test_a_checkpoint_question_shows_computed_numbers(handouts):
    md = handouts["main-ideas"]["md"]
    assert "b3 = 0 and the step size is -1.57. What is the new b3?" in md
    md = handouts["inside-the-black-box"]["md"]
    assert "What does softplus make of 2.14 (two decimals)?" in md
    assert "2. 3.49 (2.28 x 1.53)" in md.split("## Answers")[1]


def test_a_question_may_not_show_its_own_answer():
    text = GOOD.replace("The slope?", "The slope is {{ slope main-ideas b3 step 1 }}?")
    with pytest.raises(
        ChainruleError, match=r"x\.md:6: block 2 \(checkpoint\): the question shows"
    ):
        parse_lesson(text, label="x.md")


def test_the_answer_keys_hold_the_engines_numbers(handouts):
    key = handouts["inside-the-black-box"]["md"].split("## Answers")[1]
    assert "1. 2.25" in key and "2. 3.49" in key
    key = handouts["main-ideas"]["md"].split("## Answers")[1]
    assert "1. -15.66" in key and "2. 1.57" in key
    assert "(0.76)" not in handouts["all-parameters"]["md"]  # no stray typed answers


def test_cross_entropy_says_why_1_75(handouts):
    md = handouts["cross-entropy"]["md"]
    assert re.search(r"1\.76\.\s+Adding the three terms after rounding", md)
    assert "gives\n1.75 instead" in md or "gives 1.75 instead" in md


# --- quantities ------------------------------------------------------------------------


def test_quantities_are_the_engines_numbers():
    bench = Workbench()

    def value(text: str) -> float:
        return bench.value(parse_quantity(text))

    # the seed's first step (reference: slope -15.6551083806, step -1.5655108381)
    assert value("slope main-ideas b3") == pytest.approx(-15.6551083806, abs=1e-9)
    assert value("step-size main-ideas b3 step 1") == pytest.approx(-1.5655108381, abs=1e-9)
    assert value("new-value main-ideas b3 step 2") == pytest.approx(2.1917151733, abs=1e-9)
    assert value("loss main-ideas step 1") == pytest.approx(20.4235976776, abs=1e-9)
    assert value("final main-ideas b3") == pytest.approx(2.6089111372, abs=1e-9)
    assert value("steps main-ideas") == 10
    # ln(1 + e^2.14) and the by-hand pass, rounded node by node
    assert value("node inside-the-black-box y1 at dosage=0") == pytest.approx(2.2512326, abs=1e-7)
    assert value("node inside-the-black-box bottom at dosage=0") == pytest.approx(3.4956, abs=1e-4)
    assert value("node inside-the-black-box bottom at dosage=0 rounded 2") == 3.49
    assert value("node inside-the-black-box predicted at dosage=0 rounded 2") == -0.02
    # softmax and its slopes: p(1 - p) and -p_i p_j
    p = [value(f"softmax 1.43 -0.40 0.23 pick {i}") for i in (1, 2, 3)]
    assert sum(p) == pytest.approx(1.0) and [round(x, 2) for x in p] == [0.68, 0.11, 0.21]
    assert value("softmax-slope 1.43 -0.40 0.23 pick 1 by 1") == pytest.approx(p[0] * (1 - p[0]))
    assert value("softmax-slope 1.43 -0.40 0.23 pick 1 by 2") == pytest.approx(-p[0] * p[1])
    assert value("cross-entropy 0.57") == pytest.approx(0.5621189, abs=1e-7)
    assert value("total-cross-entropy 0.57 0.58 0.52") == pytest.approx(1.7607726, abs=1e-7)
    assert value("total-cross-entropy 0.57 0.58 0.52 rounded 2") == pytest.approx(1.75)
    # the ReLU network's final bias, as the PyTorch tutorial prints it after 34 steps
    assert round(value("final relu-in-action final_bias"), 4) == -16.0019
    assert value("steps relu-in-action") == 34
    # per-row slopes of the cross entropy add up to the slope of the total (3 x the mean)
    rows = [value(f"row-slope iris-three output.bias[0] {r}") for r in (1, 2, 3)]
    assert sum(rows) == pytest.approx(3 * value("slope iris-three output.bias[0]"), rel=1e-9)
    assert rows[0] == pytest.approx(value("probability iris-three 1 1") - 1)
    assert rows[1] == pytest.approx(value("probability iris-three 2 1"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("slop main-ideas b3", "did you mean 'slope'"),
        ("slope main-ideas", "takes 2 words, got 1"),
        ("node inside-the-black-box y1", "needs 'at INPUT=VALUE'"),
        ("softmax 1 2 pick 3", "there are 2 raw outputs"),
        ("cross-entropy 1.5", "probabilities must be above 0"),
        ("slope main-ideas b3 step 0", "step '0'"),
        ("loss main-ideas rounded 2", "'rounded' is for node"),
    ],
)
def test_a_bad_quantity_says_what_it_expects(text, message):
    with pytest.raises(ChainruleError, match=re.escape(message)):
        parse_quantity(text)


# --- mistakes in a lesson file ---------------------------------------------------------

GOOD = """# Two steps

Text with {{ slope main-ideas b3 | 2 }}.

```checkpoint
question: The slope?
answer: slope main-ideas b3
```
"""


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (GOOD.replace("slope main-ideas b3\n", "slop main-ideas b3\n"), ":7: block 2 (checkpoint)"),
        (GOOD.replace("{{ slope", "{{ slop"), ":3: block 1 (text)"),
        (GOOD.replace("| 2 }}", "| two }}"), ":3: block 1 (text)"),
        (
            GOOD + "\n```chainrule\nchainrule run main-ideas --lats 3\n```\n",
            ":11: block 3 (command)",
        ),
        (GOOD + "\n```chainrule\nchainrule demo\n```\n", ":11: block 3 (command)"),
        (GOOD + "\n```chainrule\nchainrule run x --out f.md\n```\n", ":11: block 3 (command)"),
        (GOOD + "\n```figure\nscenario: main-ideas\nkind: pie\n```\n", ":12: block 3 (figure)"),
        (
            GOOD + "\n```figure\nscenario: main-ideas\nkindd: squiggle\n```\n",
            ":12: block 3 (figure)",
        ),
        (GOOD + "\n```checkpoint\nquestion: ?\n", ":10: block 3 (checkpoint)"),
        (GOOD.replace("question: The slope?\n", ""), ":5: block 2 (checkpoint)"),
        (
            GOOD.replace("The slope?", "The slope {{ slop main-ideas b3 }}?"),
            ":6: block 2 (checkpoint)",
        ),
        # found when played: a scenario that is not there
        (
            GOOD.replace("answer: slope main-ideas", "answer: slope no-such"),
            ":5: block 2 (checkpoint)",
        ),
    ],
)
def test_a_mistake_is_one_line_naming_file_line_and_block(tmp_path, capsys, text, where):
    path = tmp_path / "broken.md"
    path.write_text(text)
    code, out, err = run_cli(["lesson", str(path), "--render", str(tmp_path / "h.md")], capsys)
    assert code == 2
    assert err.startswith(f"chainrule: error: {path}{where}: ")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "h.md").exists()


def test_cli_refuses_mixed_options_and_unknown_lessons(tmp_path, capsys):
    code, _, err = run_cli(["lesson", "main-idea"], capsys)
    assert code == 2 and "did you mean 'main-ideas'" in err
    code, _, err = run_cli(["lesson", "main-ideas", "--no-answers"], capsys)
    assert code == 2 and "--no-answers is for a handout" in err
    code, _, err = run_cli(["lesson", "main-ideas", "--render", str(tmp_path / "h.pdf")], capsys)
    assert code == 2 and "a handout is .md or .html" in err
    code, _, err = run_cli(["lesson", "main-ideas", "--from", "99"], capsys)
    assert code == 2 and "has blocks 1 to" in err


def test_a_scenario_file_beside_the_lesson_is_found(tmp_path, capsys):
    source = Path(chainrule.lesson.__file__).parent.parent / "scenarios" / "main-ideas.toml"
    (tmp_path / "mine.toml").write_text(source.read_text().replace("b3 = 0.0", "b3 = 1.0"))
    (tmp_path / "mine.md").write_text(
        "# Mine\n\nStart {{ start mine.toml b3 | 1 }}.\n\n```chainrule\nchainrule run mine.toml"
        " --first 1\n```\n"
    )
    other = tmp_path / "elsewhere"
    other.mkdir()
    os.chdir(other)  # the lesson's folder, not the working folder, holds the scenario
    try:
        lesson = load_lesson(tmp_path / "mine.md")
        text = render_markdown(lesson, perform_all(lesson))
    finally:
        os.chdir(Path(__file__).parent)
    assert "Start 1.0." in text and "1.0000" in text


# --- the documentation ------------------------------------------------------------------


def test_docs_example_lesson_renders_and_its_outputs_are_real(tmp_path, capsys):
    docs = DOCS.read_text()
    example = docs.split("~~~markdown\n", 1)[1].split("~~~", 1)[0]
    (tmp_path / "example.md").write_text(example)
    lesson = load_lesson(tmp_path / "example.md")
    text = render_markdown(lesson, perform_all(lesson))
    assert "The first step size is -1.57." in text and "**Exercise 1.**" in text
    assert "1. -6.26 (dSSR/db3 at step 2)" in text
    # the documented lessons listing and error line are what the commands print
    _, listing, _ = run_cli(["lessons"], capsys)
    assert f"$ chainrule lessons\n{listing}```" in docs
    (tmp_path / "broken.md").write_text(example.replace("answer: slope", "answer: slop"))
    os.chdir(tmp_path)
    try:
        code, _, err = run_cli(["lesson", "broken.md"], capsys)
    finally:
        os.chdir(Path(__file__).parent)
    assert code == 2 and f"\n{err}" in docs


# --- playing in a terminal --------------------------------------------------------------

PLAYED = """# Played

First words.

```checkpoint
question: What is the slope dSSR/db3 at b3 = 0?
answer: slope main-ideas b3
decimals: 2
about: dSSR/db3
```

Middle words.

```checkpoint
question: And the new b3 after the first step?
answer: new-value main-ideas b3
decimals: 2
```

Last words.
"""


def _controlling_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """``chainrule lesson ...`` in a pseudo-terminal, read and typed into as a learner does."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.master, slave = pty.openpty()
        env = {**os.environ, "PYTHONPATH": str(Path(chainrule.__file__).parent.parent)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chainrule", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=env,
            start_new_session=True,
            preexec_fn=_controlling_terminal,  # so that Ctrl-C reaches the lesson as SIGINT
        )
        os.close(slave)
        self.seen = ""

    def expect(self, text: str, timeout: float = 30.0) -> str:
        end = time.monotonic() + timeout
        while text not in self.seen:
            left = end - time.monotonic()
            assert left > 0, f"waited for {text!r}; the terminal shows:\n{self.seen}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the process ended
                    chunk = b""
                if not chunk:
                    assert text in self.seen, f"ended before {text!r}:\n{self.seen}"
                self.seen += chunk.decode("utf-8", "replace").replace("\r\n", "\n")
        return self.seen

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def finish(self) -> int:
        try:
            self.expect("\x00", timeout=30.0)
        except AssertionError:
            pass
        code = self.process.wait(timeout=30)
        os.close(self.master)
        return code


chainrule = sys.modules["chainrule"]


def test_play_right_then_wrong_answer(tmp_path):
    (tmp_path / "played.md").write_text(PLAYED)
    term = Terminal(["lesson", "played.md"], tmp_path)
    term.expect("First words.")
    term.expect("Checkpoint: What is the slope dSSR/db3 at b3 = 0?")
    term.expect("> ")
    term.type("-15.66\n")
    term.expect("Right: dSSR/db3 is -15.6551.")
    term.expect("Middle words.")
    term.expect("> ")
    term.type("3\n")
    term.expect("Not quite: the answer is 1.5655, not 3.")
    term.expect("End of the lesson: 1 of 2 checkpoints right.")
    assert term.finish() == 0


def test_ctrl_c_leaves_cleanly_and_from_resumes(tmp_path):
    (tmp_path / "played.md").write_text(PLAYED)
    term = Terminal(["lesson", "played.md"], tmp_path)
    term.expect("What is the slope")
    term.expect("> ")
    term.type("\x03")
    seen = term.expect("Resume with: chainrule lesson played.md --from 2")
    assert term.finish() == 130
    assert "Traceback" not in term.seen and "chainrule: interrupted" in term.seen
    assert "Middle words." not in seen
    # --from 3 starts at the text after the first checkpoint
    term = Terminal(["lesson", "played.md", "--from", "3"], tmp_path)
    term.expect("resuming at block 3 of 5")
    term.expect("Middle words.")
    term.expect("> ")
    term.type("1.57\n")
    term.expect("Right: the answer is 1.5655.")
    term.expect("End of the lesson: 1 of 1 checkpoints right.")
    assert term.finish() == 0
    assert "First words." not in term.seen


def test_play_stops_on_q_and_shows_an_answer_on_enter(tmp_path, capsys, monkeypatch):
    import io

    (tmp_path / "played.md").write_text(PLAYED)
    monkeypatch.setattr(sys, "stdin", io.StringIO("\nq\n"))
    code, out, _ = run_cli(["lesson", str(tmp_path / "played.md")], capsys)
    assert code == 0
    assert "The answer is -15.66." in out
    assert (
        f"Stopped at block 4. Resume with: chainrule lesson {tmp_path / 'played.md'} --from 4"
        in out
    )
    assert "Last words." not in out


def test_play_writes_figures(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    import io

    (tmp_path / "fig.md").write_text(
        "# Fig\n\n```figure\nscenario: main-ideas\nkind: network\ncaption: The net.\n```\n"
    )
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code, out, _ = run_cli(
        ["lesson", str(tmp_path / "fig.md"), "--figures", str(tmp_path / "figs")], capsys
    )
    assert code == 0 and "[2/2] figure: The net." in out
    written = tmp_path / "figs" / "fig-2-network.png"
    assert written.read_bytes()[:4] == b"\x89PNG" and f"wrote {written}" in out


def test_lesson_is_data_blocks_with_lines():
    lesson = parse_lesson(PLAYED, label="p.md")
    assert [(b.number, b.kind, b.line) for b in lesson.blocks] == [
        (1, "text", 1),
        (2, "checkpoint", 5),
        (3, "text", 12),
        (4, "checkpoint", 14),
        (5, "text", 20),
    ]
    assert lesson.summary == "First words."
