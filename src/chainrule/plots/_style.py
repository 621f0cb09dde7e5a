"""Colours and small drawing helpers shared by the figures.

The colours follow StatQuest's pictures: the blue and orange curves that the two hidden
nodes contribute, the green squiggle they add up to, the pink loss curve.
"""

from __future__ import annotations

import textwrap
import warnings
from typing import Any

import numpy as np

BLUE = "#1f77b4"
ORANGE = "#ff7f0e"
GREEN = "#2ca02c"
PINK = "#e377c2"
DARK_PINK = "#b5338a"
GREY = "#7f7f7f"
LIGHT_GREY = "#d9d9d9"
BLACK = "#222222"
RED = "#d62728"
PURPLE = "#9467bd"
BROWN = "#8c564b"
TEAL = "#17becf"
#: The tangent lines on the loss curve and their slopes.
TANGENT = "#1f4e9c"

#: Curves drawn one after the other (the decomposition's terms).
TERM_COLOURS = (BLUE, ORANGE, PURPLE, BROWN, TEAL, RED)

#: Trained parameters are drawn in this colour, frozen ones in grey.
TRAINED = "#d6336c"
FROZEN = "#6c757d"

#: The two classes of a binary problem, then more for multi-class ones.
CLASS_COLOURS = ("#3b6fb6", "#e8833a", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#d62728")


def step_colours(count: int) -> list[Any]:
    """``count`` shades from light to StatQuest green; the last one is green itself."""
    from matplotlib.colors import to_rgb

    end = np.array(to_rgb(GREEN))
    start = np.array(to_rgb("#c7e9c0"))
    if count == 1:
        return [tuple(end)]
    return [tuple(start + (end - start) * t) for t in np.linspace(0.0, 1.0, count)]


#: The largest magnitude an axis is asked to reach (a margin around 1e308 overflows).
LARGEST = 1e307


def warn(figure: Any, text: str) -> None:
    """Say above the whole figure, in red, what the reader must know (a diverged run),
    wrapped to the figure's width."""

    width = max(40, int(figure.get_size_inches()[0] * 13))  # characters at 10 points
    figure.suptitle(textwrap.fill(text, width), color=RED, fontsize="medium")


def padded_range(values: np.ndarray, fraction: float = 0.05, minimum: float = 0.5):
    """``(low, high)`` around ``values`` with a margin (at least ``minimum`` wide in all).

    Values that are not finite, or so large that a margin around them would overflow,
    are left out (an axis cannot reach them).

    >>> padded_range(np.array([0.0, 10.0, np.inf, 1e308]))
    (-0.5, 10.5)
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values) & (np.abs(values) < LARGEST)]
    if values.size == 0:
        return -1.0, 1.0
    low, high = float(values.min()), float(values.max())
    span = high - low
    if span < minimum:
        middle = (low + high) / 2
        low, high, span = middle - minimum / 2, middle + minimum / 2, minimum
    return low - fraction * span, high + fraction * span


def log_limits(ax: Any, values: np.ndarray, most_ticks: int = 8) -> None:
    """A log-scale y axis over the positive finite ``values``, ticked at whole decades.

    The limits and ticks are set here: around a loss of 1e+293, matplotlib's own margin
    and tick search reach past the largest float and fail. With many decades the ticks
    are every few decades, at most ``most_ticks`` of them.
    """
    from matplotlib.ticker import FixedLocator, LogFormatterSciNotation, NullLocator

    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values) & (values > 0) & (values < LARGEST)]
    if values.size == 0:
        ax.set_yscale("log")
        return
    low, high = float(np.log10(values.min())), float(np.log10(values.max()))
    margin = max(0.05 * (high - low), 0.1)
    # The limits first: they turn autoscaling off, which would overflow on the way.
    ax.set_ylim(10 ** (low - margin), 10 ** min(high + margin, np.log10(LARGEST)))
    ax.set_yscale("log")
    decades = int(np.floor(high + margin)) - int(np.ceil(low - margin))
    if decades > most_ticks:
        every = int(np.ceil(decades / most_ticks))
        first = int(np.ceil((low - margin) / every)) * every
        ax.yaxis.set_major_locator(
            FixedLocator([10.0**k for k in range(first, int(high) + 1, every)])
        )
        ax.yaxis.set_major_formatter(LogFormatterSciNotation())
        ax.yaxis.set_minor_locator(NullLocator())


def symlog_limits(ax: Any, values: np.ndarray, linthresh: float, most_ticks: int = 4) -> None:
    """A symmetric log y axis (linear within ``linthresh`` of 0) over finite ``values``,
    ticked at 0 and at whole decades, at most ``most_ticks`` of them on each side."""
    from matplotlib.ticker import FixedLocator, LogFormatterSciNotation, NullLocator

    values = np.asarray(values, dtype=np.float64)
    values = np.abs(values[np.isfinite(values) & (np.abs(values) < LARGEST)])
    if values.size == 0:
        ax.set_yscale("symlog", linthresh=linthresh)
        return
    top = float(np.log10(max(values.max(), linthresh)))
    bottom = float(np.log10(linthresh))
    every = max(1, int(np.ceil((top - bottom) / most_ticks)))
    decades = [10.0**k for k in range(int(np.floor(top)), int(np.ceil(bottom)), -every)]
    reach = 10 ** min(top + 0.05 * (top - bottom), np.log10(LARGEST))
    ax.set_ylim(-reach, reach)
    ax.set_yscale("symlog", linthresh=linthresh)
    ax.yaxis.set_major_locator(FixedLocator([-d for d in decades] + [0.0] + decades[::-1]))
    ax.yaxis.set_major_formatter(LogFormatterSciNotation(linthresh=linthresh))
    ax.yaxis.set_minor_locator(NullLocator())


# ---------------------------------------------------------------------------------------
# Layout: text that fits, legends where the data is not
# ---------------------------------------------------------------------------------------


def wrap(text: str, characters: int) -> str:
    r"""``text`` wrapped to lines of at most ``characters`` (each line of it on its own).

    >>> wrap("SSR over w1 and b1, the other five held", 20)
    'SSR over w1 and b1,\nthe other five held'
    """

    return "\n".join(textwrap.fill(line, max(characters, 12)) for line in text.split("\n"))


def settle(figure: Any) -> None:
    """Lay ``figure`` out as it will be drawn, so that what is measured is where it ends
    up (a figure too small for its decorations is drawn anyway: no warning)."""

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "constrained_layout not applied", UserWarning)
        figure.draw_without_rendering()


def fits(text: Any, renderer: Any) -> bool:
    """Whether the drawn ``text`` lies wholly on its figure's canvas."""
    box = text.get_window_extent(renderer)
    figure = text.get_figure(root=True)
    page = figure.bbox
    margin = 0.03 * figure.dpi  # a little room: the text must fit at any resolution
    return box.x0 >= page.x0 + margin and box.x1 <= page.x1 - margin and box.y1 <= page.y1


def axes_title(ax: Any, text: str, fontsize: float = 10.0) -> Any:
    """Set ``text`` as the title of ``ax``, its lines wrapped until none runs past the
    canvas (centred on the axes, a long subtitle was cut at the figure's edge)."""
    figure = ax.get_figure(root=True)
    longest = max(len(line) for line in text.split("\n"))
    heading = ax.set_title(text, fontsize=fontsize)
    for _ in range(6):
        settle(figure)
        if fits(heading, figure.canvas.get_renderer()) or longest <= 12:
            break
        longest = int(longest * 0.85)
        heading.set_text(wrap(text, longest))
    return heading


def _display_boxes(ax: Any, renderer: Any) -> tuple[list[Any], list[np.ndarray], list[Any]]:
    """What a legend must not cover in ``ax``: line paths, scatter points and texts,
    in display coordinates."""
    from matplotlib.collections import PathCollection

    paths = []
    for line in ax.get_lines():
        if not line.get_visible() or line.get_zorder() < 1 or len(line.get_xdata()) == 0:
            continue  # the zero line and other backgrounds
        paths.append(line.get_transform().transform_path(line.get_path()))
    points = []
    for collection in ax.collections:
        if isinstance(collection, PathCollection) and collection.get_visible():
            offsets = collection.get_offsets()
            if len(offsets):
                points.append(collection.get_offset_transform().transform(offsets))
    texts = [t.get_window_extent(renderer) for t in ax.texts if t.get_visible() and t.get_text()]
    return paths, points, texts


def _inside(box: Any, points: np.ndarray) -> bool:
    """Whether any of the (n, 2) display ``points`` is inside ``box``."""
    x, y = points[:, 0], points[:, 1]
    return bool(np.any((x >= box.x0) & (x <= box.x1) & (y >= box.y0) & (y <= box.y1)))


#: Where a legend may go inside the axes, in the order tried.
LEGEND_PLACES = (
    "upper right",
    "upper left",
    "lower right",
    "lower left",
    "center right",
    "center left",
    "upper center",
    "lower center",
)


def place_legend(ax: Any, outside: str = "right", **options: Any) -> Any:
    """A legend inside ``ax`` where it covers no line, point or text; when there is no
    such place, beside the axes (``outside``: ``"right"`` or ``"below"``).

    matplotlib's ``loc="best"`` only minimises the overlap; this refuses any.
    """
    options = {"fontsize": "small", "framealpha": 0.9, **options}
    figure = ax.get_figure()
    legend = ax.legend(loc=LEGEND_PLACES[0], **options)
    if legend is None or not legend.get_texts():
        return legend
    settle(figure)  # settle the layout: the boxes are where they end up
    renderer = figure.canvas.get_renderer()
    paths, points, texts = _display_boxes(ax, renderer)
    for place in LEGEND_PLACES:
        legend.set_loc(place)
        box = legend.get_window_extent(renderer).expanded(1.04, 1.08)
        if any(p.intersects_bbox(box, filled=False) for p in paths):
            continue
        if any(_inside(box, q) for q in points):
            continue
        if any(box.overlaps(t) for t in texts):
            continue
        return legend
    legend.remove()
    if outside == "below":
        return ax.legend(
            loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2, frameon=False, **options
        )
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, **options)


def _covered(ax: Any, text: Any, renderer: Any) -> bool:
    """Whether ``text`` crosses a line of ``ax``, covers another text or leaves the axes."""
    box = text.get_window_extent(renderer).expanded(1.06, 1.2)
    if not (ax.bbox.contains(box.x0, box.y0) and ax.bbox.contains(box.x1, box.y1)):
        return True
    paths, _, _ = _display_boxes(ax, renderer)
    others = [
        t.get_window_extent(renderer)
        for t in ax.texts
        if t is not text and t.get_visible() and t.get_text()
    ]
    return any(p.intersects_bbox(box, filled=False) for p in paths) or any(
        box.overlaps(t) for t in others
    )


def free_place(ax: Any, label: Any, tries: int = 24) -> None:
    """Move the annotation ``label`` (pointing at a value of ``ax``) to where no line runs
    through it: beside its point, else along a circle around it (its arrow, if it has
    one, shows then: a thin line back to the point); it stays put when nothing is free."""
    figure = ax.get_figure(root=True)
    settle(figure)
    renderer = figure.canvas.get_renderer()
    if not _covered(ax, label, renderer):
        return
    start = label.get_position()
    places = [(6.0, 0.0, "left"), (-6.0, 0.0, "right")]
    for k in range(tries):
        angle = 2 * np.pi * k / tries
        for reach in (18.0, 32.0, 48.0):
            side = "left" if np.cos(angle) >= 0 else "right"
            places.append((reach * np.cos(angle), reach * np.sin(angle), side))
    for dx, dy, side in places:
        label.set_position((dx, dy))
        label.set_horizontalalignment(side)
        if not _covered(ax, label, renderer):
            if label.arrow_patch is not None:  # a thin line back to its point
                label.arrow_patch.set_visible(abs(dx) > 6 or bool(dy))
            return
    label.set_position(start)
    label.set_horizontalalignment("left")
