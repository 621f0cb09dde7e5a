"""Lessons: Markdown texts around live commands, checkpoints and figures.

A lesson file (see ``docs/lessons.md``) is parsed into a :class:`Lesson`, a data object of
blocks (:mod:`chainrule.lesson.document`); playing it computes every number with the
engine (:mod:`chainrule.lesson.quantity`, :mod:`chainrule.lesson.player`), and the same
results are shown in the terminal or rendered as a handout
(:mod:`chainrule.lesson.render`). The built-in path follows StatQuest's neural network
series, from inside the black box to backpropagation with cross entropy.

>>> [info.name for info in builtin_lessons()][:2]
['inside-the-black-box', 'main-ideas']
>>> lesson = load_lesson("main-ideas")
>>> lesson.title
'Main ideas: one parameter learned by the chain rule'
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from chainrule.errors import ChainruleError
from chainrule.lesson.document import (
    Checkpoint,
    Command,
    Figure,
    Lesson,
    LessonError,
    Text,
    parse_lesson,
)
from chainrule.lesson.player import Performed, perform, perform_all, play
from chainrule.lesson.quantity import Quantity, Workbench, parse_quantity
from chainrule.lesson.render import render_html, render_markdown, write_handout
from chainrule.text import did_you_mean

__all__ = [
    "Checkpoint",
    "Command",
    "Figure",
    "Lesson",
    "LessonError",
    "LessonInfo",
    "Performed",
    "Quantity",
    "Text",
    "Workbench",
    "builtin_lessons",
    "load_lesson",
    "parse_lesson",
    "parse_quantity",
    "perform",
    "perform_all",
    "play",
    "render_html",
    "render_markdown",
    "write_handout",
]


@dataclass(frozen=True)
class LessonInfo:
    """A built-in lesson: its place in the path, name, title and summary."""

    position: int
    name: str
    title: str
    summary: str
    path: Path


def _builtin_dir() -> Path:
    return Path(str(resources.files("chainrule") / "lessons"))


def builtin_lessons() -> list[LessonInfo]:
    """The lessons that ship with chainrule, in the order of the path.

    >>> builtin_lessons()[0].title
    'Inside the black box'
    """
    infos = []
    for position, path in enumerate(sorted(_builtin_dir().glob("*.md")), start=1):
        lesson = _read(path, builtin=True)
        infos.append(LessonInfo(position, lesson.name, lesson.title, lesson.summary, path))
    return infos


def _read(path: Path, builtin: bool) -> Lesson:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ChainruleError(f"{path}: is not UTF-8 text") from None
    except OSError as exc:
        raise ChainruleError(f"{path}: cannot read the file ({exc.strerror})") from None
    label = path.name if builtin else os.fspath(path)
    lesson = parse_lesson(text, label=label, path=path)
    source = lesson.name if builtin else os.fspath(path)
    return Lesson(lesson.name, lesson.title, lesson.summary, lesson.blocks, label, path, source)


def load_lesson(source: str | os.PathLike[str]) -> Lesson:
    """A lesson from a Markdown file, or a built-in one by name (``chainrule lessons``).

    >>> load_lesson("no-such-lesson")
    Traceback (most recent call last):
    ...
    chainrule.errors.ChainruleError: 'no-such-lesson' is neither a file nor a built-in lesson ...
    """
    path = Path(source)
    if path.is_file():
        return _read(path, builtin=False)
    if path.is_dir():
        raise ChainruleError(f"{path}: is a directory, not a lesson file")
    text = os.fspath(source)
    files = sorted(_builtin_dir().glob("*.md"))
    by_name = {re.sub(r"^\d+[-_]", "", f.stem): f for f in files}
    if text in by_name:
        return _read(by_name[text], builtin=True)
    if text.isdigit() and 1 <= int(text) <= len(files):
        return _read(files[int(text) - 1], builtin=True)
    if path.suffix or "/" in text or os.sep in text:
        raise ChainruleError(f"{text}: no such file")

    hint = did_you_mean(text, by_name)
    raise ChainruleError(
        f"{text!r} is neither a file nor a built-in lesson{hint} (built-in: {', '.join(by_name)})"
    )
