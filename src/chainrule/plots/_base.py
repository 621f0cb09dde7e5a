"""What every figure shares: the matplotlib import, the Figure record and saving.

matplotlib is imported here, inside :func:`matplotlib_figure`, never at module import,
so that ``import chainrule`` and ``import chainrule.plots`` stay light. Figures are made
with ``matplotlib.figure.Figure`` directly (no pyplot state, nothing to close) and drawn
by the headless Agg backend.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chainrule.errors import ChainruleError
from chainrule.io import atomic_write_with

INSTALL_HINT = "figures need matplotlib: pip install 'chainrule[plot]'"

#: The file formats a matplotlib figure can be saved in.
STATIC_FORMATS: tuple[str, ...] = ("png", "svg", "pdf")


def require_matplotlib() -> Any:
    """Import matplotlib with the headless Agg backend, or say how to install it.

    >>> require_matplotlib().get_backend().lower()
    'agg'
    """
    try:
        import matplotlib
    except ImportError:
        raise ChainruleError(INSTALL_HINT) from None
    if matplotlib.get_backend().lower() != "agg":
        matplotlib.use("Agg")
    return matplotlib


def matplotlib_figure(width: float, height: float, dpi: float = 100) -> Any:
    """A new matplotlib Figure of ``width`` x ``height`` inches (not managed by pyplot).

    >>> matplotlib_figure(3, 2).get_size_inches().tolist()
    [3.0, 2.0]
    """
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    figure = MplFigure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)  # a renderer to measure text with (legends placed by it)
    return figure


def format_of(path: str | os.PathLike[str], allowed: tuple[str, ...], kind: str) -> str:
    """The file format named by ``path``'s suffix, checked against what ``kind`` can write.

    >>> format_of("fit.svg", ("png", "svg"), "squiggle")
    'svg'
    """
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix == "jpeg":
        suffix = "jpg"
    if suffix not in allowed:
        shown = f"'.{suffix}'" if suffix else "no suffix"
        raise ChainruleError(
            f"a {kind} figure cannot be saved as {shown} ({path}); "
            f"use one of: {', '.join('.' + a for a in allowed)}"
        )
    return suffix


@dataclass(eq=False, kw_only=True)
class Figure:
    """A drawn figure plus the numbers it drew (read them to check or reuse the picture).

    ``figure`` is the matplotlib Figure (None for kinds drawn by other tools). ``save(path)``
    picks the format from the suffix; in a notebook the figure shows itself.
    """

    kind: str
    figure: Any = field(repr=False)

    #: The formats :meth:`save` accepts for this kind.
    formats: tuple[str, ...] = field(default=STATIC_FORMATS, repr=False)

    def save(self, path: str | os.PathLike[str], dpi: float | None = None) -> Path:
        """Write the figure to ``path`` (format from the suffix) and return the path.

        >>> import tempfile, pathlib
        >>> from chainrule.scenario import load_scenario
        >>> from chainrule.plots import network
        >>> fig = network(load_scenario("main-ideas").build_model())
        >>> path = fig.save(pathlib.Path(tempfile.mkdtemp()) / "network.png")
        >>> path.read_bytes()[:4]
        b'\\x89PNG'
        """
        fmt = format_of(path, self.formats, self.kind)
        return atomic_write_with(path, lambda temporary: self._write(temporary, fmt, dpi))

    def _write(self, path: str, fmt: str, dpi: float | None) -> None:
        """Write the figure as ``fmt`` to the file ``path`` (subclasses for other tools)."""
        self.figure.savefig(path, format=fmt, dpi=dpi or self.figure.dpi)

    def to_bytes(self, fmt: str = "png", dpi: float | None = None) -> bytes:
        """The figure encoded as ``fmt`` (one of :attr:`formats`)."""
        format_of(f"figure.{fmt}", self.formats, self.kind)
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, f"figure.{fmt}")
            self._write(path, fmt, dpi)
            return Path(path).read_bytes()

    def _repr_png_(self) -> bytes | None:
        """The picture for a notebook."""
        if "png" not in self.formats or self.figure is None:
            return None
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        return buffer.getvalue()

    def close(self) -> None:
        """Forget the matplotlib figure (its numbers stay)."""
        if self.figure is not None:
            self.figure.clear()
