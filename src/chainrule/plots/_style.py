"""Colours and small drawing helpers shared by the figures.

The colours follow StatQuest's pictures: the blue and orange curves that the two hidden
nodes contribute, the green squiggle they add up to, the pink loss curve.
"""

from __future__ import annotations

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
    import textwrap

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
