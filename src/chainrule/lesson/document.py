"""A lesson as data: the blocks of a Markdown lesson file, and the parser that reads them.

A lesson is Markdown with three kinds of fenced block among the prose::

    # Main ideas

    The slope at b3 = 0 is {{ slope main-ideas b3 | 2 }}.

    ```chainrule
    chainrule run main-ideas --last 3
    ```

    ```checkpoint
    question: b3 = 0 and the slope is -15.66. With learning rate 0.1, what is the step size?
    answer: step-size main-ideas b3 step 1
    decimals: 2
    ```

    ```figure
    scenario: main-ideas
    kind: loss-curve
    caption: The SSR against b3, with the tangent at each step.
    ```

The parser checks every block (the command's options, the quantity's words, the figure's
keys) before anything runs, and a mistake names the file, the line and the block:
``lesson.md:12: block 3 (checkpoint): ...``. Numbers are never typed into a lesson: a
checkpoint's answer and a ``{{ ... }}`` in the prose name a *quantity*
(:mod:`chainrule.lesson.quantity`) that the engine computes when the lesson is played.

>>> lesson = parse_lesson("# Hi\\n\\nSome text.\\n\\n```chainrule\\nchainrule scenarios\\n```\\n")
>>> lesson.title, [block.kind for block in lesson.blocks]
('Hi', ['text', 'command'])
>>> lesson.blocks[1].argv
('scenarios',)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from chainrule.errors import ChainruleError
from chainrule.lesson.quantity import Quantity, parse_quantity
from chainrule.text import did_you_mean

__all__ = [
    "COMMANDS",
    "FIGURE_KEYS",
    "Block",
    "Checkpoint",
    "Command",
    "Figure",
    "Lesson",
    "LessonError",
    "Text",
    "parse_lesson",
]

#: The commands a ``chainrule`` block may run: those that only print.
COMMANDS = ("run", "explain", "scan", "scenarios")

#: The keys of a figure block (``scenario`` and ``kind`` are required).
FIGURE_KEYS = ("scenario", "kind", "caption", "param", "param2", "steps", "decompose")

#: The keys of a checkpoint block (``question`` and ``answer`` are required).
CHECKPOINT_KEYS = ("question", "answer", "decimals", "about")

#: The kinds of figure a lesson may draw: the still ones of ``chainrule plot``.
FIGURE_KINDS = ("squiggle", "loss-curve", "contour", "history", "network")

_FENCE = re.compile(r"^(```+|~~~+)\s*([A-Za-z_-]*)\s*$")
_INLINE = re.compile(r"\{\{(.*?)\}\}")
_DECIMALS = re.compile(r"^(\d)(%?)$")


class LessonError(ChainruleError):
    """A mistake in a lesson file, or a block that cannot run: names file, line and block."""


@dataclass(frozen=True)
class Inline:
    """A ``{{ quantity | decimals }}`` in the prose: computed, then written with
    ``decimals`` digits after the point (as a percentage when ``percent``)."""

    quantity: Quantity
    decimals: int = 4
    percent: bool = False


@dataclass(frozen=True)
class Text:
    """Markdown prose; ``values`` are its ``{{ ... }}`` quantities, in order."""

    number: int
    line: int
    markdown: str
    values: tuple[Inline, ...] = ()
    kind: str = field(default="text", init=False)


@dataclass(frozen=True)
class Command:
    """A ``chainrule`` block: one command line, run as ``chainrule`` runs it."""

    number: int
    line: int
    text: str
    argv: tuple[str, ...]
    kind: str = field(default="command", init=False)


@dataclass(frozen=True)
class Checkpoint:
    """A question whose answer is a quantity the engine computes.

    ``decimals`` is how the answer key writes it; ``about`` names the answer in the
    feedback (``the step size of b3``). The question and ``about`` may hold ``{{ ... }}``
    numbers, as prose does: ``values`` are the question's, ``about_values`` those of
    ``about``, in order.
    """

    number: int
    line: int
    question: str
    answer: Quantity
    decimals: int = 4
    about: str = ""
    values: tuple[Inline, ...] = ()
    about_values: tuple[Inline, ...] = ()
    kind: str = field(default="checkpoint", init=False)


@dataclass(frozen=True)
class Figure:
    """A figure of a scenario, drawn by :func:`chainrule.plots.plot_scenario`."""

    number: int
    line: int
    scenario: str
    figure: str
    caption: str = ""
    param: str | None = None
    param2: str | None = None
    steps: tuple[str, ...] | None = None
    decompose: bool = False
    kind: str = field(default="figure", init=False)


Block = Text | Command | Checkpoint | Figure


@dataclass(frozen=True)
class Lesson:
    """A parsed lesson: its name, title, one-line summary, source and blocks.

    ``label`` names the file in messages; ``path`` is where it is (scenario files named by
    the lesson are looked for beside it), None for a lesson given as text; ``source`` is
    what ``chainrule lesson`` is given to play it again (a built-in name or the file).
    """

    name: str
    title: str
    summary: str
    blocks: tuple[Block, ...]
    label: str = "<lesson>"
    path: Path | None = None
    source: str = "<lesson>"

    def error(self, block: Block, message: str) -> LessonError:
        """A :class:`LessonError` that starts with the file, the line and the block."""
        return LessonError(
            f"{self.label}:{block.line}: block {block.number} ({block.kind}): {message}"
        )


# ---------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------


def parse_lesson(
    text: str,
    label: str = "<lesson>",
    path: str | os.PathLike[str] | None = None,
    source: str | None = None,
) -> Lesson:
    """A :class:`Lesson` from the text of a Markdown lesson file.

    The title is the first ``# heading``; the summary is the first paragraph after it.

    >>> parse_lesson("# T\\n\\n```figure\\nkind: squiggle\\n```\\n", label="x.md")
    Traceback (most recent call last):
    ...
    chainrule.lesson.document.LessonError: x.md:3: block 2 (figure): ...needs 'scenario: ...'...
    """
    file = Path(path) if path is not None else None
    name = _name_of(file) if file is not None else "lesson"
    reader = _Reader(text.splitlines(), label)
    blocks = reader.blocks()
    title, summary = _title_and_summary(blocks)
    if not title:
        raise LessonError(f"{label}:1: a lesson starts with its title, a line '# Title'")
    return Lesson(name, title, summary, tuple(blocks), label, file, source or label)


def _name_of(path: Path) -> str:
    """A lesson's name: its file name without ``.md`` and without a leading ``01-``."""
    return re.sub(r"^\d+[-_]", "", path.stem)


def _title_and_summary(blocks: list[Block]) -> tuple[str, str]:
    for block in blocks:
        if isinstance(block, Text):
            lines = block.markdown.strip().splitlines()
            if not lines or not lines[0].startswith("# "):
                return "", ""
            paragraphs = "\n".join(lines[1:]).strip().split("\n\n")
            summary = " ".join(paragraphs[0].split()) if paragraphs and paragraphs[0] else ""
            return lines[0][2:].strip(), _INLINE.sub("...", summary)
        return "", ""
    return "", ""


class _Reader:
    """Reads the lines of a lesson into blocks, checking each fenced block as it goes."""

    def __init__(self, lines: list[str], label: str) -> None:
        self.lines = lines
        self.label = label
        self.found: list[Block] = []

    def error(self, line: int, kind: str, message: str) -> LessonError:
        return LessonError(f"{self.label}:{line}: block {len(self.found) + 1} ({kind}): {message}")

    def blocks(self) -> list[Block]:
        prose: list[str] = []
        prose_start = 1
        i = 0
        while i < len(self.lines):
            fence = _FENCE.match(self.lines[i])
            if fence is None or fence[2] not in ("chainrule", "checkpoint", "figure"):
                if fence is not None:  # another language's code: prose, kept whole
                    end = self.closing(i, fence[1], None)
                    prose.extend(self.lines[i : end + 1])
                    i = end + 1
                    continue
                if not prose:
                    prose_start = i + 1
                prose.append(self.lines[i])
                i += 1
                continue
            self.add_prose(prose, prose_start)
            prose = []
            kind = {"chainrule": "command", "checkpoint": "checkpoint", "figure": "figure"}[
                fence[2]
            ]
            end = self.closing(i, fence[1], kind)
            body = self.lines[i + 1 : end]
            {"command": self.command, "checkpoint": self.checkpoint, "figure": self.figure}[kind](
                body, i + 1
            )
            i = end + 1
        self.add_prose(prose, prose_start)
        return self.found

    def closing(self, start: int, fence: str, kind: str | None) -> int:
        for j in range(start + 1, len(self.lines)):
            if self.lines[j].strip() == fence:
                return j
        if kind is None:
            return len(self.lines) - 1
        raise self.error(start + 1, kind, f"the block opened here is never closed with {fence}")

    def add_prose(self, lines: list[str], start: int) -> None:
        while lines and not lines[0].strip():
            lines, start = lines[1:], start + 1
        text = "\n".join(lines).strip()
        if not text:
            return
        values = []
        for offset, line in enumerate(lines):
            for match in _INLINE.finditer(line):
                values.append(self.inline(match[1], start + offset))
        self.found.append(Text(len(self.found) + 1, start, text, tuple(values)))

    def inlines(self, text: str, line: int, kind: str) -> tuple[Inline, ...]:
        """Every ``{{ ... }}`` of one line of text, in order."""
        return tuple(self.inline(match[1], line, kind) for match in _INLINE.finditer(text))

    def inline(self, text: str, line: int, kind: str = "text") -> Inline:
        spec, _, digits = text.partition("|")
        decimals, percent = 4, False
        if digits.strip():
            match = _DECIMALS.match(digits.strip())
            if match is None:
                raise self.error(
                    line, kind, f"{{{{{text}}}}}: after '|' write the decimals, e.g. | 2 or | 1%"
                )
            decimals, percent = int(match[1]), bool(match[2])
        try:
            return Inline(parse_quantity(spec), decimals, percent)
        except ChainruleError as exc:
            raise self.error(line, kind, f"{{{{{text.strip()}}}}}: {exc}") from None

    def command(self, body: list[str], line: int) -> None:
        lines = [(n, s.strip()) for n, s in enumerate(body, start=line + 1) if s.strip()]
        if len(lines) != 1:
            raise self.error(
                line, "command", "write one command line, e.g. chainrule run main-ideas"
            )
        at, text = lines[0]
        try:
            words = shlex.split(text, comments=True)
        except ValueError as exc:
            raise self.error(at, "command", f"cannot read {text!r}: {exc}") from None
        if words and words[0] == "chainrule":
            words = words[1:]
        if not words or words[0] not in COMMANDS:
            got = repr(words[0]) if words else "nothing"
            raise self.error(
                at, "command", f"a lesson runs the commands {', '.join(COMMANDS)}; got {got}"
            )

        try:
            parse_command(words)
        except ChainruleError as exc:
            raise self.error(at, "command", str(exc)) from None
        self.found.append(Command(len(self.found) + 1, at, text, tuple(words)))

    def keys(
        self, body: list[str], line: int, kind: str, allowed: tuple[str, ...]
    ) -> dict[str, tuple[int, str]]:
        """``key: value`` lines (a line that starts with spaces continues the previous value)."""
        values: dict[str, tuple[int, str]] = {}
        last: str | None = None
        for n, raw in enumerate(body, start=line + 1):
            if not raw.strip():
                continue
            if raw[:1].isspace() and last is not None:
                at, value = values[last]
                values[last] = (at, f"{value} {raw.strip()}")
                continue
            key, colon, value = raw.partition(":")
            key = key.strip()
            if not colon or key not in allowed:
                hint = did_you_mean(key, allowed)
                raise self.error(
                    n,
                    kind,
                    f"{raw.strip()!r}: expected 'key: value', the key one of "
                    f"{', '.join(allowed)}{hint}",
                )
            if key in values:
                raise self.error(n, kind, f"{key!r} is given twice")
            values[key] = (n, value.strip())
            last = key
        return values

    def checkpoint(self, body: list[str], line: int) -> None:
        values = self.keys(body, line, "checkpoint", CHECKPOINT_KEYS)
        for key in ("question", "answer"):
            if not values.get(key, (0, ""))[1]:
                raise self.error(line, "checkpoint", f"a checkpoint needs '{key}: ...'")
        at, answer = values["answer"]
        try:
            quantity = parse_quantity(answer)
        except ChainruleError as exc:
            raise self.error(at, "checkpoint", f"answer: {exc}") from None
        decimals = 4
        if "decimals" in values:
            at, text = values["decimals"]
            if not (text.isdigit() and int(text) <= 9):
                raise self.error(
                    at, "checkpoint", f"decimals: expected a whole number 0 to 9, got {text!r}"
                )
            decimals = int(text)
        at, question = values["question"]
        shown = self.inlines(question, at, "checkpoint")
        about_at, about = values.get("about", (at, ""))
        about_shown = self.inlines(about, about_at, "checkpoint")
        if any(_same(inline.quantity, quantity) for inline in shown):
            raise self.error(
                at, "checkpoint", "the question shows its own answer: {{ " + answer + " }}"
            )
        self.found.append(
            Checkpoint(
                len(self.found) + 1,
                line,
                question,
                quantity,
                decimals,
                about,
                shown,
                about_shown,
            )
        )

    def figure(self, body: list[str], line: int) -> None:
        values = self.keys(body, line, "figure", FIGURE_KEYS)
        for key in ("scenario", "kind"):
            if not values.get(key, (0, ""))[1]:
                raise self.error(line, "figure", f"a figure needs '{key}: ...'")
        at, kind = values["kind"]
        if kind not in FIGURE_KINDS:
            raise self.error(
                at, "figure", f"kind: {kind!r} is not one of {', '.join(FIGURE_KINDS)}"
            )
        decompose = False
        if "decompose" in values:
            at, text = values["decompose"]
            if text not in ("yes", "no", "true", "false"):
                raise self.error(at, "figure", f"decompose: expected yes or no, got {text!r}")
            decompose = text in ("yes", "true")
        steps = tuple(values["steps"][1].split()) if "steps" in values else None
        self.found.append(
            Figure(
                len(self.found) + 1,
                line,
                values["scenario"][1],
                kind,
                values.get("caption", (0, ""))[1],
                values.get("param", (0, ""))[1] or None,
                values.get("param2", (0, ""))[1] or None,
                steps,
                decompose,
            )
        )


def _same(a: Quantity, b: Quantity) -> bool:
    """Whether two quantities name the same number, however their words were written."""
    return replace(a, text="") == replace(b, text="")


def parse_command(words: Sequence[str]) -> argparse.Namespace:
    """A lesson's command read by the CLI's own parser; a mistake is one ChainruleError.

    >>> parse_command(["run", "main-ideas", "--last", "3"]).last
    3
    """
    from chainrule.cli import build_parser, negative_numbers_joined

    if any(w == "--out" or w.startswith("--out=") for w in words):
        raise ChainruleError("a lesson shows a command's output; leave out --out")
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            return build_parser().parse_args(negative_numbers_joined(list(words)))
    except SystemExit:
        lines = [line for line in errors.getvalue().splitlines() if line.strip()]
        message = lines[-1].split("error: ", 1)[-1] if lines else "cannot read the command"
        raise ChainruleError(f"chainrule {' '.join(words)}: {message}") from None
