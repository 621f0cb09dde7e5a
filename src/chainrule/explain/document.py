"""One data object, many renderings: the blocks an explanation is made of, and the renderers.

Every explanation (a ledger, a scan, a chain rule, a diagnosis) first builds its data, then
describes itself as a short :data:`Document`: paragraphs, equation lines and tables whose
cells are raw numbers. The renderers below turn the same document into plain text, a rich
table, Markdown, LaTeX or CSV; JSON is the object's own :meth:`Explanation.to_dict`. So
numbers are formatted in one place: four decimals for people (text, table, Markdown,
LaTeX), full precision for machines (CSV, JSON).

In a notebook an explanation shows itself as HTML (:func:`html`, a small escaped table) or
Markdown: :meth:`Explanation._repr_html_` and :meth:`Explanation._repr_markdown_`.

rich is imported only inside the ``"table"`` renderer; without it, that format falls back
to plain text.

>>> doc = (Paragraph("the loss"), Table((Column("b3", "$b_3$"), Column("SSR", "SSR")),
...                                    ((0.0, 20.4235976776),)))
>>> print(render_document(doc, "markdown"))
the loss
<BLANKLINE>
| b3 | SSR |
|---:|---:|
| 0.0000 | 20.4236 |
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np

from chainrule.errors import ChainruleError
from chainrule.explain.notation import escape_latex, full, latex_number
from chainrule.text import decimals

#: The formats every explanation renders to.
FORMATS: tuple[str, ...] = ("table", "text", "markdown", "latex", "csv", "json")

Cell = float | int | str | None


@dataclass(frozen=True)
class Column:
    """A column's header as plain text (``dSSR/db3``) and as LaTeX (``$\\frac{...}{...}$``)."""

    text: str
    latex: str


@dataclass(frozen=True)
class Table:
    """Rows of raw cells (numbers stay numbers until a renderer formats them).

    ``gap_before`` puts an ellipsis row before that row index (``len(rows)``: after the
    last row): rows were left out there.
    """

    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]
    gap_before: int | None = None
    title: str | None = None

    def lines(self, cell: Callable[[Cell], str], gap: str) -> list[list[str]]:
        """The rows as formatted cells, with a row of ``gap`` where rows were left out."""
        out = [[cell(c) for c in row] for row in self.rows]
        if self.gap_before is not None:
            out.insert(self.gap_before, [gap] * len(self.columns))
        return out


@dataclass(frozen=True)
class Paragraph:
    """Prose; ``latex`` is its LaTeX source when it holds math (else the text is escaped)."""

    text: str
    latex: str | None = None


@dataclass(frozen=True)
class Equations:
    """Equation lines, each as plain text and as LaTeX math."""

    lines: tuple[tuple[str, str], ...]


Block = Table | Paragraph | Equations
Document = tuple[Block, ...]


class Explanation:
    """Base of the explainer's data objects: ``to_dict()``, ``document()``, ``render(fmt)``."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract: plain dicts, lists, strings and floats."""
        raise NotImplementedError

    def document(self) -> Document:
        """The blocks that every rendering shows."""
        raise NotImplementedError

    def render(self, fmt: str = "text") -> str:
        """This explanation as ``fmt``: one of :data:`FORMATS`."""
        return render(self, fmt)

    def __str__(self) -> str:
        return self.render("text")

    def _repr_markdown_(self) -> str:
        """Jupyter's Markdown view: the same as ``render("markdown")``."""
        return self.render("markdown")

    def _repr_html_(self) -> str:
        """Jupyter's HTML view: paragraphs, equations and escaped tables (see :func:`html`)."""
        return html(self.document())


def render(obj: Explanation, fmt: str = "text") -> str:
    """``obj`` rendered as ``"table"``, ``"text"``, ``"markdown"``, ``"latex"``, ``"csv"``
    or ``"json"``.

    >>> from chainrule.explain.diagnose import Diagnosis
    >>> render(Diagnosis("converged", "b3 settled at 2.61."), "json")
    '{\\n  "kind": "converged",\\n  "message": "b3 settled at 2.61."\\n}'
    """
    if fmt not in FORMATS:
        raise ChainruleError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "json":
        return json.dumps(plain(obj.to_dict()), indent=2)
    return render_document(obj.document(), fmt)


def render_document(doc: Document, fmt: str) -> str:
    """The blocks of ``doc`` as ``fmt`` (any of :data:`FORMATS` but ``"json"``)."""
    if fmt == "table":
        return _rich(doc)
    if fmt == "csv":
        return "\n".join(_csv(block) for block in doc if isinstance(block, Table))
    renderer = {"text": _text, "markdown": _markdown, "latex": _latex}[fmt]
    return "\n\n".join(renderer(block) for block in doc)


def plain(x: Any) -> Any:
    """``x`` with numpy values made plain Python and non-finite floats made None (JSON null)."""
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, np.ndarray):
        if x.dtype.kind in "iub":  # whole numbers and booleans: tolist makes them plain
            return x.tolist()
        if x.dtype.kind == "f":  # in one pass, not number by number (the page's curves)
            finite = np.isfinite(x)
            return x.tolist() if finite.all() else np.where(finite, x, None).tolist()
        return plain(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, float, np.integer, np.floating)):
        return full(x)
    return x


# ---------------------------------------------------------------------------------------
# Cells
# ---------------------------------------------------------------------------------------


def _is_number(cell: Cell) -> bool:
    return isinstance(cell, (int, float, np.integer, np.floating)) and not isinstance(cell, bool)


def _cell_text(cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, (int, np.integer)):
        return str(int(cell))
    if _is_number(cell):
        return decimals(float(cell))
    return str(cell)


def _cell_latex(cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, (int, np.integer)):
        return str(int(cell))
    if _is_number(cell):
        return f"${latex_number(float(cell))}$"
    return escape_latex(str(cell))


def _numeric_columns(table: Table) -> list[bool]:
    """Whether each column holds only numbers (right-aligned) or some text (left)."""
    return [
        all(_is_number(row[j]) or row[j] is None for row in table.rows)
        for j in range(len(table.columns))
    ]


# ---------------------------------------------------------------------------------------
# Plain text
# ---------------------------------------------------------------------------------------


def _text(block: Block) -> str:
    if isinstance(block, Paragraph):
        return block.text
    if isinstance(block, Equations):
        return "\n".join(line for line, _ in block.lines)
    header = [c.text for c in block.columns]
    body = block.lines(_cell_text, "...")
    widths = [max(len(r[j]) for r in [header, *body]) for j in range(len(header))]
    right = _numeric_columns(block)

    def line(cells: Sequence[str]) -> str:
        padded = [
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)
        ]
        return "  ".join(padded).rstrip()

    lines = [block.title] if block.title else []
    lines += [line(header), "  ".join("-" * w for w in widths)]
    lines += [line(r) for r in body]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------


def _markdown(block: Block) -> str:
    if isinstance(block, Paragraph):
        return block.text
    if isinstance(block, Equations):
        return "```\n" + "\n".join(line for line, _ in block.lines) + "\n```"

    def row(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    lines = [f"**{block.title}**", ""] if block.title else []
    lines.append(row([c.text for c in block.columns]))
    lines.append("|" + "|".join("---:" if r else "---" for r in _numeric_columns(block)) + "|")
    lines += [row(cells) for cells in block.lines(_cell_text, "...")]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# LaTeX
# ---------------------------------------------------------------------------------------


def _latex(block: Block) -> str:
    if isinstance(block, Paragraph):
        return block.latex if block.latex is not None else escape_latex(block.text)
    if isinstance(block, Equations):
        return "\n".join(rf"\[ {math_line} \]" for _, math_line in block.lines)
    spec = "".join("r" if r else "l" for r in _numeric_columns(block))
    lines = [rf"\textbf{{{escape_latex(block.title)}}}", ""] if block.title else []
    lines += [rf"\begin{{tabular}}{{{spec}}}", r"\hline"]
    lines.append(" & ".join(c.latex for c in block.columns) + r" \\")
    lines.append(r"\hline")
    lines += [" & ".join(cells) + r" \\" for cells in block.lines(_cell_latex, r"$\vdots$")]
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# HTML (for notebooks)
# ---------------------------------------------------------------------------------------


def html(doc: Document) -> str:
    """``doc`` as a small HTML fragment: ``<p>``, ``<pre>`` and ``<table>``, every text
    escaped. Notebooks show it for an explanation (``_repr_html_``).

    >>> print(html((Paragraph("a < b"),)))
    <div class="chainrule"><p>a &lt; b</p></div>
    """
    parts = []
    for block in doc:
        if isinstance(block, Paragraph):
            parts.append(f"<p>{escape(block.text)}</p>")
        elif isinstance(block, Equations):
            parts.append(f"<pre>{escape(_text(block))}</pre>")
        else:
            parts.append(_html_table(block))
    return f'<div class="chainrule">{"".join(parts)}</div>'


def _html_table(table: Table) -> str:
    align = ["right" if r else "left" for r in _numeric_columns(table)]
    out = ["<table>"]
    if table.title:
        out.append(f"<caption>{escape(table.title)}</caption>")
    head = "".join(
        f'<th style="text-align: {a}">{escape(c.text)}</th>'
        for c, a in zip(table.columns, align, strict=True)
    )
    out.append(f"<thead><tr>{head}</tr></thead><tbody>")
    for cells in table.lines(_cell_text, "\u22ee"):
        row = "".join(
            f'<td style="text-align: {a}">{escape(c)}</td>'
            for c, a in zip(cells, align, strict=True)
        )
        out.append(f"<tr>{row}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


# ---------------------------------------------------------------------------------------
# CSV (tables only, full precision)
# ---------------------------------------------------------------------------------------


def _csv(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c.text for c in table.columns])
    for cells in table.rows:
        writer.writerow(["" if c is None else (full(c) if _is_number(c) else c) for c in cells])
    return out.getvalue()


# ---------------------------------------------------------------------------------------
# rich
# ---------------------------------------------------------------------------------------


def _rich(doc: Document) -> str:
    """A rich rendering captured as text; plain text when rich is not installed.

    The console is as wide as the widest block needs (a table's natural width, a
    paragraph's longest line), so no cell is ever cut short with an ellipsis: a wide
    ledger is a wide table, which a terminal can scroll or a pager can show.
    """
    try:
        from rich import box
        from rich.console import Console
        from rich.measure import Measurement
        from rich.table import Table as RichTable
        from rich.text import Text
    except ImportError:
        return render_document(doc, "text")
    renderables: list[Any] = []
    for block in doc:
        if isinstance(block, Table):
            table = RichTable(title=block.title, box=box.SIMPLE_HEAD, title_justify="left")
            for column, right in zip(block.columns, _numeric_columns(block), strict=True):
                table.add_column(
                    Text(column.text), justify="right" if right else "left", no_wrap=True
                )
            for cells in block.lines(_cell_text, "..."):
                table.add_row(*(Text(c) for c in cells))
            renderables.append(table)
        else:
            renderables.append(Text(_text(block)))
    wide = Console(file=io.StringIO(), width=1_000_000, color_system=None)
    width = max(
        [1]
        + [Measurement.get(wide, wide.options, r).maximum for r in renderables]
        + [len(line) for block in doc if not isinstance(block, Table) for line in _lines(block)]
    )
    console = Console(file=io.StringIO(), width=width, color_system=None, highlight=False)
    for i, renderable in enumerate(renderables):
        if i:
            console.print()
        console.print(renderable)
    lines = [line.rstrip() for line in console.file.getvalue().splitlines()]  # type: ignore[attr-defined]
    kept = [line for i, line in enumerate(lines) if line or (i and lines[i - 1])]
    return "\n".join(kept).strip("\n")


def _lines(block: Block) -> list[str]:
    """The lines of a block's plain text (and of a table's title)."""
    if isinstance(block, Table):
        return [block.title] if block.title else []
    return _text(block).splitlines()
