"""Handouts: a played lesson rendered as Markdown or as one self-contained HTML file.

The prose is the lesson's own Markdown with its numbers filled in, each command is shown
with its output, each figure is embedded (HTML: a ``data:`` URI, so the file needs
nothing else; Markdown: a PNG written beside the handout), and each checkpoint becomes a
numbered exercise, with an answer key at the end unless ``answers=False``.

>>> from chainrule.lesson.document import parse_lesson
>>> from chainrule.lesson.player import perform_all
>>> lesson = parse_lesson('''# T
...
... ```checkpoint
... question: What is the first slope?
... answer: slope main-ideas b3
... decimals: 2
... ```
... ''')
>>> print(render_markdown(lesson, perform_all(lesson)))
# T
<BLANKLINE>
**Exercise 1.** What is the first slope?
<BLANKLINE>
## Answers
<BLANKLINE>
1. -15.66
<BLANKLINE>
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path

from chainrule.errors import ChainruleError
from chainrule.io import atomic_write
from chainrule.lesson.document import Checkpoint, Command, Figure, Lesson, Text
from chainrule.lesson.player import Performed, format_value, perform_all

__all__ = ["HANDOUT_FORMATS", "block_html", "render_html", "render_markdown", "write_handout"]

#: The handout formats, by file suffix.
HANDOUT_FORMATS = (".md", ".html")


def _exercises(performed: Sequence[Performed]) -> dict[int, int]:
    """Each checkpoint's block number -> its exercise number (1, 2, ...)."""
    numbers = [p.block.number for p in performed if isinstance(p.block, Checkpoint)]
    return {block: i for i, block in enumerate(numbers, start=1)}


def _key(performed: Sequence[Performed]) -> list[tuple[int, str, str]]:
    """The answer key: (exercise, answer as the lesson writes it, what it is)."""
    exercise = _exercises(performed)
    out = []
    for p in performed:
        if isinstance(p.block, Checkpoint) and p.answer is not None:
            answer = format_value(p.answer, p.block.decimals)
            out.append((exercise[p.block.number], answer, p.about))
    return out


def render_markdown(
    lesson: Lesson,
    performed: Sequence[Performed],
    answers: bool = True,
    figures: Mapping[int, str] | None = None,
) -> str:
    """The handout as Markdown; ``figures`` maps a figure's block number to its image link."""
    figures = figures or {}
    exercise = _exercises(performed)
    parts = []
    for p in performed:
        block = p.block
        if isinstance(block, Text):
            parts.append(p.text.strip())
        elif isinstance(block, Command):
            parts.append(f"```text\n$ chainrule {' '.join(block.argv)}\n\n{p.text.rstrip()}\n```")
        elif isinstance(block, Checkpoint):
            parts.append(f"**Exercise {exercise[block.number]}.** {p.text}")
        elif isinstance(block, Figure):
            caption = block.caption or f"{block.figure} of {block.scenario}"
            if block.number in figures:
                parts.append(f"![{caption}]({figures[block.number]})\n\n*{caption}*")
            else:
                parts.append(f"*{caption}* ({p.note or 'figure not drawn'})")
    key = _key(performed)
    if answers and key:
        lines = [f"{n}. {answer}" + (f" ({about})" if about else "") for n, answer, about in key]
        parts.append("## Answers\n\n" + "\n".join(lines))
    return "\n\n".join(parts) + "\n"


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto;
       padding: 0 1rem; line-height: 1.5; color: #222; }
pre { background: #f6f6f4; padding: 0.8rem; overflow-x: auto; font-size: 0.85rem; }
.exercise { border-left: 4px solid #e69f00; padding: 0.3rem 0.8rem; background: #fff8ec; }
figure { margin: 1.5rem 0; } figure img { max-width: 100%; }
figcaption { font-style: italic; color: #555; }
code { background: #f0f0ee; padding: 0 0.2rem; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 0.2rem 0.5rem; }
""".strip()


def _prose_html(markdown: str) -> str:
    """Markdown prose as HTML (markdown-it-py, the ``[lessons]`` extra; without it, each
    paragraph escaped as it is written)."""
    try:
        from markdown_it import MarkdownIt
    except ImportError:
        html = []
        for paragraph in markdown.split("\n\n"):
            stripped = paragraph.strip()
            level = len(stripped) - len(stripped.lstrip("#"))
            if 1 <= level <= 6 and stripped[level : level + 1] == " ":
                html.append(f"<h{level}>{escape(stripped[level + 1 :])}</h{level}>")
            elif stripped:
                html.append(f"<p>{escape(stripped)}</p>")
        return "\n".join(html)
    return MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)


def block_html(p: Performed, exercise: int | None = None) -> str:
    """One performed block as HTML, as a handout shows it: prose rendered from Markdown, a
    command with its output, a figure as a ``data:`` URI, a checkpoint as exercise
    ``exercise`` (the web page's lesson panel shows its blocks with this too).

    >>> from chainrule.lesson.document import parse_lesson
    >>> lesson = parse_lesson("# T\\n\\n```chainrule\\nchainrule scenarios\\n```\\n")
    >>> block_html(perform_all(lesson)[1]).splitlines()[0]
    '<pre><code>$ chainrule scenarios'
    """
    block = p.block
    if isinstance(block, Text):
        return _prose_html(p.text)
    if isinstance(block, Command):
        command = escape(f"$ chainrule {' '.join(block.argv)}")
        return f"<pre><code>{command}\n\n{escape(p.text.rstrip())}</code></pre>"
    if isinstance(block, Checkpoint):
        number = block.number if exercise is None else exercise
        return f'<p class="exercise"><strong>Exercise {number}.</strong> {escape(p.text)}</p>'
    assert isinstance(block, Figure)
    caption = escape(block.caption or f"{block.figure} of {block.scenario}")
    if p.image is None:
        return f"<p><em>{caption}</em> ({escape(p.note)})</p>"
    data = base64.b64encode(p.image).decode("ascii")
    return (
        f'<figure><img alt="{caption}" src="data:image/png;base64,{data}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def render_html(lesson: Lesson, performed: Sequence[Performed], answers: bool = True) -> str:
    """The handout as one HTML file: styles inline, figures as ``data:`` URIs."""
    exercise = _exercises(performed)
    body = [block_html(p, exercise.get(p.block.number)) for p in performed]
    key = _key(performed)
    if answers and key:
        items = "".join(
            f"<li>{escape(answer)}{f' ({escape(about)})' if about else ''}</li>"
            for _, answer, about in key
        )
        body.append(f"<h2>Answers</h2>\n<ol>{items}</ol>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(lesson.title)}</title>\n<style>\n{_STYLE}\n</style>\n</head>\n"
        "<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


def write_handout(lesson: Lesson, out: str | os.PathLike[str], answers: bool = True) -> list[Path]:
    """Play ``lesson`` and write its handout to ``out`` (``.md`` or ``.html``), atomically.

    A Markdown handout's figures are PNG files beside it (``NAME-figure-3.png``). Returns
    every path written, the handout last.
    """

    path = Path(out)
    if path.suffix not in HANDOUT_FORMATS:
        raise ChainruleError(
            f"--render {path}: a handout is {' or '.join(HANDOUT_FORMATS)}, "
            f"not {path.suffix or 'a file without a suffix'}"
        )
    if not path.parent.is_dir():
        raise ChainruleError(f"--render {path}: the folder {path.parent} does not exist")
    performed = perform_all(lesson)
    written: list[Path] = []
    if path.suffix == ".html":
        text = render_html(lesson, performed, answers)
    else:
        links = {}
        for p in performed:
            if isinstance(p.block, Figure) and p.image is not None:
                image = path.with_name(f"{path.stem}-figure-{p.block.number}.png")
                atomic_write(image, p.image)
                written.append(image)
                links[p.block.number] = image.name
        text = render_markdown(lesson, performed, answers, links)
    atomic_write(path, text.encode("utf-8"))
    return [*written, path]
