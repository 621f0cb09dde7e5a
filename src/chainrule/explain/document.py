"""One data object, many renderings: the blocks an explanation is made of, and the renderers.

Every explanation (a ledger, a scan, a chain rule, a diagnosis) first builds its data, then
describes itself as a short :data:`Document`: paragraphs, equation lines and tables whose
cells are raw numbers. The renderers below turn the same document into plain text, a rich
table, Markdown, LaTeX or CSV; JSON is the object's own :meth:`Explanation.to_dict`. So
numbers are formatted in one place: four decimals for people (text, table, Markdown,
LaTeX), full precision for machines (CSV, JSON).

In a notebook an explanation shows itself as HTML (:func:`html`: a small escaped table,
and its equations as display math that the notebook typesets), Markdown or LaTeX (what a
PDF export takes): :meth:`Explanation._repr_html_`, :meth:`Explanation._repr_markdown_`
and :meth:`Explanation._repr_latex_`.

For a terminal, ``render(fmt, width=80)`` fits the people's formats (``table``, ``text``)
to 80 columns: prose and equations wrap, and a table too wide takes its narrower layout
(:attr:`Table.turned`) or leaves out columns from the right, with one line below it that
says what was left out (:func:`fit_table`, :class:`Fitted`).

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
import textwrap
from collections.abc import Callable, Iterable, Sequence
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

    To fit a narrow terminal (:func:`fit_table`), ``turned`` is the same numbers laid out
    narrower (the ledger: one row per step and parameter), and columns are left out from
    the right, never the first ``keep_first`` nor the last ``keep_last``.
    """

    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]
    gap_before: int | None = None
    title: str | None = None
    turned: Table | None = None
    keep_first: int = 1
    keep_last: int = 0

    def select(self, kept: Sequence[int]) -> Table:
        """This table with only the columns at the indices ``kept`` (no turned layout)."""
        return Table(
            tuple(self.columns[j] for j in kept),
            tuple(tuple(row[j] for j in kept) for row in self.rows),
            self.gap_before,
            self.title,
        )

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

    def render(self, fmt: str = "text", width: int | None = None) -> str:
        """This explanation as ``fmt``: one of :data:`FORMATS`; ``width`` fits ``table``
        and ``text`` to that many columns (see :func:`render_document`)."""
        return render(self, fmt, width)

    def __str__(self) -> str:
        return self.render("text")

    def _repr_markdown_(self) -> str:
        """Jupyter's Markdown view: the same as ``render("markdown")``."""
        return self.render("markdown")

    def _repr_html_(self) -> str:
        """Jupyter's HTML view: paragraphs, equations as math and escaped tables (see
        :func:`html`)."""
        return html(self.document())

    def _repr_latex_(self) -> str:
        """Jupyter's LaTeX view (a PDF export uses it): the same as ``render("latex")``."""
        return self.render("latex")


def render(obj: Explanation, fmt: str = "text", width: int | None = None) -> str:
    """``obj`` rendered as ``"table"``, ``"text"``, ``"markdown"``, ``"latex"``, ``"csv"``
    or ``"json"``; ``width`` fits ``table`` and ``text`` to that many columns.

    >>> from chainrule.explain.diagnose import Diagnosis
    >>> render(Diagnosis("converged", "b3 settled at 2.61."), "json")
    '{\\n  "kind": "converged",\\n  "message": "b3 settled at 2.61."\\n}'
    """
    if fmt not in FORMATS:
        raise ChainruleError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "json":
        return json.dumps(plain(obj.to_dict()), indent=2)
    return render_document(obj.document(), fmt, width)


#: The formats fitted to a terminal's width: the others are files (or go to one).
FITTED_FORMATS = ("table", "text")


def render_document(
    doc: Document,
    fmt: str,
    width: int | None = None,
    note: Callable[[Fitted], str] | None = None,
) -> str:
    """The blocks of ``doc`` as ``fmt`` (any of :data:`FORMATS` but ``"json"``).

    With a ``width`` (``table`` and ``text`` only; None or 0: no limit), no line is
    longer than ``width``: prose and equations wrap, and a table too wide is fitted
    (:func:`fit_table`) with one line below it, ``note(fitted)``, saying what changed.

    >>> names = ("x", "dSSR/dpredicted", "dpredicted/dy1", "dy1/dx1")
    >>> doc = (Table(tuple(Column(n, n) for n in names), ((1, 2.0, 3.0, 4.0),)),)
    >>> print(render_document(doc, "text", width=40))
    x  dSSR/dpredicted  dpredicted/dy1
    -  ---------------  --------------
    1           2.0000          3.0000
    <BLANKLINE>
    left out to fit 40 columns: dy1/dx1
    """
    if fmt in FITTED_FORMATS and width:
        doc = fit_document(doc, fmt, width, note or default_note)
    else:
        width = None
    if fmt == "table":
        return _rich(doc, width)
    if fmt == "csv":
        return "\n".join(_csv(block) for block in doc if isinstance(block, Table))
    if fmt == "text":
        return "\n\n".join(_text(block, width) for block in doc)
    renderer = {"markdown": _markdown, "latex": _latex}[fmt]
    return "\n\n".join(renderer(block) for block in doc)


# ---------------------------------------------------------------------------------------
# Fitting a width
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fitted:
    """What fitting a table to ``width`` columns did: took its ``turned`` layout, and/or
    left out the columns named in ``left_out``."""

    width: int
    turned: bool
    left_out: tuple[str, ...]


def default_note(fitted: Fitted) -> str:
    """The line below a fitted table, in the Python API's words.

    >>> default_note(Fitted(80, False, ("dy1/dx1", "dx1/dw1")))
    'left out to fit 80 columns: dy1/dx1, dx1/dw1'
    """
    said = []
    if fitted.turned:
        said.append(f"one row per step and parameter, to fit {fitted.width} columns")
    if fitted.left_out:
        said.append(f"left out to fit {fitted.width} columns: {names_text(fitted.left_out)}")
    return "; ".join(said)


def names_text(names: Sequence[str], most: int = 4) -> str:
    """Column names for a note: all of them, or the first few, the last and how many.

    >>> names_text([f"b1 = {k}" for k in range(20)])
    'b1 = 0, b1 = 1, b1 = 2, ..., b1 = 19 (20 columns)'
    """
    if len(names) <= most:
        return ", ".join(names)
    return f"{', '.join(names[: most - 1])}, ..., {names[-1]} ({len(names)} columns)"


def fit_document(
    doc: Document, fmt: str, width: int, note: Callable[[Fitted], str] = default_note
) -> Document:
    """``doc`` with each table too wide for ``width`` fitted, and a note below it."""
    out: list[Block] = []
    for block in doc:
        if not isinstance(block, Table):
            out.append(block)
            continue
        table, fitted = fit_table(block, fmt, width)
        out.append(table)
        if fitted is not None:
            out.append(Paragraph(note(fitted)))
    return tuple(out)


def fit_table(table: Table, fmt: str, width: int) -> tuple[Table, Fitted | None]:
    """``table`` as ``fmt`` (``table`` or ``text``) in at most ``width`` columns.

    A table that fits is returned as it is (and None). Otherwise its ``turned`` layout
    is taken if it has one, then columns are left out from the right (keeping
    ``keep_first`` and ``keep_last``) until it fits or only those are left.
    """
    if table_width(table, fmt) <= width:
        return table, None
    turned = table.turned is not None
    if table.turned is not None:
        table = table.turned
    widths = _column_widths(table)
    k = len(table.columns)
    droppable = list(range(table.keep_first, k - table.keep_last))
    kept = list(range(k))
    while droppable and _kept_width(widths, kept, fmt) > width:
        kept.remove(droppable.pop())
    fitted = table.select(kept) if len(kept) < k else table
    left_out = tuple(c.text for j, c in enumerate(table.columns) if j not in kept)
    return fitted, Fitted(width, turned, left_out)


def table_width(table: Table, fmt: str) -> int:
    """The width of ``table`` rendered as ``fmt`` (``table`` or ``text``), title aside."""
    widths = _column_widths(table)
    return _kept_width(widths, range(len(widths)), fmt)


def _column_widths(table: Table) -> list[int]:
    """Each column's width: its widest cell or header, as every renderer formats them."""
    body = table.lines(_cell_text, "...")
    header = [c.text for c in table.columns]
    return [max(len(r[j]) for r in [header, *body]) for j in range(len(header))]


def _kept_width(widths: Sequence[int], kept: Iterable[int], fmt: str) -> int:
    """The width of a table of the kept columns: plain text puts 2 spaces between
    columns; rich (``box.SIMPLE_HEAD``) pads each column by a space on either side and
    draws a one-space edge before each (tests/test_fit_width.py checks both)."""
    chosen = [widths[j] for j in kept]
    if fmt == "table":
        return sum(chosen) + 3 * len(chosen)
    return sum(chosen) + 2 * max(len(chosen) - 1, 0)


def wrap(text: str, width: int | None, indent: int = 0) -> str:
    """Each line of ``text`` wrapped at spaces to ``width`` (None: as it is); a wrapped
    line goes on ``indent`` spaces in (capped at half the width). Words are never cut.

    >>> print(wrap("dSSR/dw1 = a x b x c", 14, indent=11))
    dSSR/dw1 = a x
               b x c
    """
    if not width:
        return text
    pad = " " * min(indent, width // 2)
    out = []
    for line in text.splitlines() or [""]:
        lead = line[: len(line) - len(line.lstrip())]
        out += textwrap.wrap(
            line,
            width,
            subsequent_indent=max(pad, lead, key=len),
            break_long_words=False,
            break_on_hyphens=False,
        ) or [""]
    return "\n".join(out)


def _equation_indent(line: str) -> int:
    """Where an equation's right-hand side starts (after ``= ``), for its wrapped lines."""
    at = line.find(" = ")
    return at + 3 if at >= 0 else 4


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


def _text(block: Block, width: int | None = None) -> str:
    if isinstance(block, Paragraph):
        return wrap(block.text, width)
    if isinstance(block, Equations):
        return "\n".join(wrap(line, width, _equation_indent(line)) for line, _ in block.lines)
    header = [c.text for c in block.columns]
    body = block.lines(_cell_text, "...")
    widths = [max(len(r[j]) for r in [header, *body]) for j in range(len(header))]
    right = _numeric_columns(block)

    def line(cells: Sequence[str]) -> str:
        padded = [
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)
        ]
        return "  ".join(padded).rstrip()

    lines = [wrap(block.title, width)] if block.title else []
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
    r"""``doc`` as a small HTML fragment: ``<p>``, ``<table>`` and each equation as display
    math (``\[ ... \]``, which a notebook typesets with MathJax; its plain text is the
    title), every text escaped. Notebooks show it for an explanation (``_repr_html_``).

    >>> print(html((Paragraph("a < b"), Equations((("y = a b", r"y = a \, b"),)))))
    <div class="chainrule"><p>a &lt; b</p><div class="math" title="y = a b">\[ y = a \, b \]</div></div>
    """  # noqa: E501 (an example's output)
    parts = []
    for block in doc:
        if isinstance(block, Paragraph):
            parts.append(f"<p>{escape(block.text)}</p>")
        elif isinstance(block, Equations):
            parts += [
                f'<div class="math" title="{escape(line)}">\\[ {escape(math)} \\]</div>'
                for line, math in block.lines
            ]
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


def _rich(doc: Document, width: int | None = None) -> str:
    """A rich rendering captured as text; plain text when rich is not installed.

    The console is as wide as the widest block needs (a table's natural width, a
    paragraph's longest line), so no cell is ever cut short with an ellipsis. With a
    ``width`` the tables were fitted to it beforehand (:func:`fit_document`) and prose
    wraps at it.
    """
    try:
        from rich import box
        from rich.console import Console
        from rich.measure import Measurement
        from rich.table import Table as RichTable
        from rich.text import Text
    except ImportError:
        return render_document(doc, "text", width)
    renderables: list[Any] = []
    for block in doc:
        if isinstance(block, Table):
            title = wrap(block.title, width) if block.title else None
            table = RichTable(title=title, box=box.SIMPLE_HEAD, title_justify="left")
            for column, right in zip(block.columns, _numeric_columns(block), strict=True):
                table.add_column(
                    Text(column.text), justify="right" if right else "left", no_wrap=True
                )
            for cells in block.lines(_cell_text, "..."):
                table.add_row(*(Text(c) for c in cells))
            renderables.append(table)
        else:
            renderables.append(Text(_text(block, width)))
    wide = Console(file=io.StringIO(), width=1_000_000, color_system=None)
    needed = max(
        [1]
        + [Measurement.get(wide, wide.options, r).maximum for r in renderables]
        + [
            len(line)
            for block in doc
            if not isinstance(block, Table)
            for line in _lines(block, width)
        ]
    )
    console = Console(file=io.StringIO(), width=needed, color_system=None, highlight=False)
    for i, renderable in enumerate(renderables):
        if i:
            console.print()
        console.print(renderable)
    lines = [line.rstrip() for line in console.file.getvalue().splitlines()]  # type: ignore[attr-defined]
    kept = [line for i, line in enumerate(lines) if line or (i and lines[i - 1])]
    return "\n".join(kept).strip("\n")


def _lines(block: Block, width: int | None = None) -> list[str]:
    """The lines of a block's plain text (and of a table's title)."""
    if isinstance(block, Table):
        return wrap(block.title, width).splitlines() if block.title else []
    return _text(block, width).splitlines()
