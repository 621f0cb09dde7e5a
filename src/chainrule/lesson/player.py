"""Playing a lesson: each block performed by the engine, then shown in the terminal.

:func:`perform` turns one block into a :class:`Performed` result: the prose with its
``{{ ... }}`` numbers computed, a command's output (the CLI's own command, run in-process
with its output captured), a checkpoint's answer, a figure's PNG bytes. The terminal
player (:func:`play`) and the handout renderers (:mod:`chainrule.lesson.render`) show the
same results, so a lesson reads the same numbers everywhere.

>>> from chainrule.lesson.document import parse_lesson
>>> from chainrule.lesson.quantity import Workbench
>>> lesson = parse_lesson("# T\\n\\nThe first slope is {{ slope main-ideas b3 | 2 }}.")
>>> perform(lesson, lesson.blocks[0], Workbench()).text
'# T\\n\\nThe first slope is -15.66.'
"""

from __future__ import annotations

import io
import re
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from chainrule.errors import ChainruleError
from chainrule.explain.quiz import Question, check_answer
from chainrule.io import atomic_write
from chainrule.lesson.document import (
    Block,
    Checkpoint,
    Command,
    Figure,
    Inline,
    Lesson,
    Text,
    parse_command,
)
from chainrule.lesson.quantity import Workbench
from chainrule.plots import INSTALL_HINT, plot_scenario
from chainrule.plots.scenario_figures import UNTRAINED_KINDS

__all__ = ["Performed", "checkpoint_question", "format_value", "perform", "play"]

_INLINE = re.compile(r"\{\{(.*?)\}\}")

#: Answers that stop a lesson at a checkpoint.
_QUIT = ("q", "quit", "exit")


@dataclass(frozen=True)
class Performed:
    """What one block gave: ``text`` (prose, a command's output, or a checkpoint's question
    with its numbers filled in), ``answer`` and ``about`` (a checkpoint's answer and what it
    is), ``image`` (a figure's PNG bytes) or ``note`` (why a figure is missing)."""

    block: Block
    text: str = ""
    answer: float | None = None
    image: bytes | None = None
    note: str = ""
    about: str = ""


def format_value(value: float, decimals: int = 4, percent: bool = False) -> str:
    """A computed number as a lesson writes it: ``decimals`` digits, no ``-0.00``.

    >>> format_value(-0.0011, 2), format_value(0.9533, 1, percent=True)
    ('0.00', '95.3%')
    """
    if percent:
        return f"{value * 100:.{decimals}f}%"
    text = f"{value:.{decimals}f}"
    return text[1:] if re.fullmatch(r"-0\.?0*", text) else text


def _run_command(block: Command, bench: Workbench) -> str:
    args = parse_command(block.argv)
    if getattr(args, "scenario", None):
        args.scenario = bench.scenario_source(args.scenario)
    out = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # as the CLI does
        args.handler(args, out)
    return out.getvalue().rstrip() + "\n"


def _fill(text: str, inlines: tuple[Inline, ...], bench: Workbench) -> str:
    """``text`` with each ``{{ ... }}`` replaced by its computed number."""
    values = iter(inlines)

    def number(_: re.Match[str]) -> str:
        inline: Inline = next(values)
        return format_value(bench.value(inline.quantity), inline.decimals, inline.percent)

    return _INLINE.sub(number, text)


def _draw(block: Figure, bench: Workbench) -> Performed:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return Performed(block, note=f"figure not drawn: {INSTALL_HINT}")

    scenario = bench.scenario(block.scenario)
    run = None if block.figure in UNTRAINED_KINDS else bench.run(block.scenario)
    with tempfile.TemporaryDirectory() as folder:
        path = plot_scenario(
            scenario,
            block.figure,
            Path(folder) / "figure.png",
            parameter=block.param,
            parameter2=block.param2,
            steps=list(block.steps) if block.steps else None,
            decompose=block.decompose,
            run=run,
        )
        return Performed(block, image=path.read_bytes())


def perform(lesson: Lesson, block: Block, bench: Workbench) -> Performed:
    """Compute what ``block`` shows; a failure names the lesson's file, line and block."""
    try:
        if isinstance(block, Text):
            return Performed(block, text=_fill(block.markdown, block.values, bench))
        if isinstance(block, Command):
            return Performed(block, text=_run_command(block, bench))
        if isinstance(block, Checkpoint):
            return Performed(
                block,
                text=_fill(block.question, block.values, bench),
                answer=bench.value(block.answer),
                about=_fill(block.about, block.about_values, bench),
            )
        return _draw(block, bench)
    except ChainruleError as exc:
        raise lesson.error(block, str(exc)) from None
    except OSError as exc:
        raise lesson.error(block, f"{exc.filename or ''}: {exc.strerror or exc}") from None
    except (ValueError, TypeError, RuntimeError) as exc:  # e.g. a figure that cannot be drawn
        raise lesson.error(block, f"{type(exc).__name__}: {exc}") from exc


def perform_all(lesson: Lesson, bench: Workbench | None = None) -> list[Performed]:
    """Every block of ``lesson``, performed in order (what a handout shows)."""
    bench = bench if bench is not None else Workbench(lesson.path.parent if lesson.path else None)
    return [perform(lesson, block, bench) for block in lesson.blocks]


# ---------------------------------------------------------------------------------------
# The terminal
# ---------------------------------------------------------------------------------------


def play(
    lesson: Lesson,
    stdout: TextIO,
    stdin: TextIO | None = None,
    start: int = 1,
    figures: str | Path = "chainrule-lesson",
) -> int:
    """Play ``lesson`` from block ``start``: print each block's text and output, ask each
    checkpoint's question and check the answer, write figures into ``figures``.

    At a checkpoint an empty answer shows the answer and goes on; ``q`` stops (saying how
    to resume). Ctrl-C stops too: the resume hint goes to stderr and KeyboardInterrupt is
    raised again for the caller (the CLI exits with 130). Returns the number of
    checkpoints answered right.
    """
    stdin = stdin if stdin is not None else sys.stdin
    echo = not stdin.isatty()  # piped answers are shown, so the transcript reads well
    total = len(lesson.blocks)
    if not 1 <= start <= total:
        raise ChainruleError(f"--from {start}: {lesson.source} has blocks 1 to {total}")
    bench = Workbench(lesson.path.parent if lesson.path else None)
    write = stdout.write
    right = asked = 0
    current = start
    try:
        if start > 1:
            write(f"{lesson.title}: resuming at block {start} of {total}\n\n")
        for block in lesson.blocks[start - 1 :]:
            current = block.number
            done = perform(lesson, block, bench)
            if isinstance(block, Text):
                write(done.text.rstrip() + "\n\n")
            elif isinstance(block, Command):
                write(f"[{block.number}/{total}] $ chainrule {' '.join(block.argv)}\n\n")
                write(done.text.rstrip() + "\n\n")
            elif isinstance(block, Figure):
                write(f"[{block.number}/{total}] figure: {block.caption or block.figure}\n")
                if done.image is None:
                    write(f"  ({done.note})\n\n")
                else:
                    path = _save_figure(Path(figures), lesson, block, done.image)
                    write(f"  wrote {path}\n\n")
            else:
                assert isinstance(block, Checkpoint) and done.answer is not None
                verdict = _ask(done, stdin, stdout, echo, total)
                if verdict is None:
                    write(
                        f"Stopped at block {block.number}. "
                        f"Resume with: {_resume(lesson, block.number)}\n"
                    )
                    return right
                asked += 1
                right += verdict
        stdout.flush()
    except KeyboardInterrupt:
        stdout.flush()
        print(
            f"\nStopped at block {current}. Resume with: {_resume(lesson, current)}",
            file=sys.stderr,
        )
        raise
    write(
        f"End of the lesson: {right} of {asked} checkpoints right.\n"
        if asked
        else "End of the lesson.\n"
    )
    return right


def _resume(lesson: Lesson, number: int) -> str:
    return f"chainrule lesson {lesson.source} --from {number}"


def _save_figure(folder: Path, lesson: Lesson, block: Figure, image: bytes) -> Path:

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ChainruleError(f"cannot create the folder {folder}: {exc.strerror or exc}") from None
    path = folder / f"{lesson.name}-{block.number}-{block.figure}.png"
    atomic_write(path, image)
    return path


def checkpoint_question(done: Performed) -> Question:
    """A performed checkpoint as a quiz :class:`~chainrule.explain.quiz.Question`, checked
    by :func:`~chainrule.explain.quiz.check_answer` (the terminal and the web page alike).

    >>> from chainrule.lesson.document import parse_lesson
    >>> lesson = parse_lesson("# T\\n\\n```checkpoint\\nquestion: The first slope?\\n"
    ...                       "answer: slope main-ideas b3\\nabout: dSSR/db3\\n```\\n")
    >>> done = perform(lesson, lesson.blocks[1], Workbench())
    >>> check_answer(checkpoint_question(done), "-15.66")
    Check(correct=True, message='Right: dSSR/db3 is -15.6551.')
    """
    if not isinstance(done.block, Checkpoint) or done.answer is None:
        raise ChainruleError(f"block {done.block.number} is a {done.block.kind}, not a checkpoint")
    answer = done.answer
    return Question(
        "value",
        "",
        done.text,
        answer,
        1e-9 * max(1.0, abs(answer)),
        subject=done.about or "the answer",
    )


def _ask(done: Performed, stdin: TextIO, stdout: TextIO, echo: bool, total: int) -> bool | None:
    """Ask until a number (or an empty line) is typed; None when the learner stops."""

    block = done.block
    assert isinstance(block, Checkpoint) and done.answer is not None
    answer = done.answer
    question = checkpoint_question(done)
    write = stdout.write
    write(f"[{block.number}/{total}] Checkpoint: {done.text}\n")
    write("(a number; Enter shows the answer, q stops)\n")
    while True:
        write("> ")
        stdout.flush()
        line = stdin.readline()
        if echo:
            write(f"{line.strip()}\n")
        if not line or line.strip().lower() in _QUIT:
            return None
        if not line.strip():
            write(f"The answer is {format_value(answer, block.decimals)}.\n\n")
            return False
        correct, message = check_answer(question, line)
        if correct or not message.startswith("Please type a number"):
            write(f"{message}\n\n")
            return correct
        write(f"{message}\n")
