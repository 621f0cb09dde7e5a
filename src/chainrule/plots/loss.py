"""The loss as a function of one or two parameters, with gradient descent walking on it.

:func:`loss_curve` is StatQuest's picture of gradient descent: the pink SSR-against-b3
curve, a point for each step (the value before the step and the loss there) and the
tangent at each point, its slope written beside it. The curve comes from
:func:`chainrule.explain.scan` (the engine's forward pass at each value); the points and
slopes come from the training history, i.e. from backpropagation. Nothing is recomputed
by a second formula, so the tangents touch the curve exactly when the engine is right.

:func:`contour` does the same over two parameters: loss contours and the descent path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.datasets import Dataset
from chainrule.errors import ChainruleError, DetailNeeded
from chainrule.explain.scan import scan
from chainrule.history import History
from chainrule.losses import LOSSES, Loss, loss_spec
from chainrule.nn.module import Module
from chainrule.plots import _style as style
from chainrule.plots._base import Figure, matplotlib_figure
from chainrule.plots.replay import divergence, first_steps, steps_in_view
from chainrule.text import significant

#: At most this many tangents are drawn (evenly chosen); every slope is still recorded.
MAX_TANGENTS = 12
#: Half the length of a tangent segment on the page, in inches.
TANGENT_HALF_LENGTH = 0.5
#: At most this many step points are drawn; every point is still recorded.
MAX_POINTS = 40


@dataclass(eq=False, kw_only=True)
class LossCurveFigure(Figure):
    """The loss against one parameter, with the descent's points and tangents.

    ``points`` is a (k, 2) array of (value before step, loss before step) for each step,
    ``tangent_slopes`` the slope the engine found there and ``steps`` the step numbers
    (1-based). ``end_point`` is (final value, final loss) after the last step.

    ``curve_x``/``curve_y`` is the bold curve: the loss against ``parameter`` with every
    other parameter at ``fixed`` (where the run ended). When other parameters are trained
    too, a step's loss was measured with THEM at that step's values, so each point lies
    on a curve of its own: ``step_curves[i]`` (over ``curve_x``) is the curve of point
    ``shown[i]``, with the other trained parameters at ``held[i]``; its tangent touches
    it there. ``shown`` indexes the points drawn; of a run that diverged only the first
    steps are in view (and not its end), and ``note`` says how far the loss grew.
    """

    parameter: str
    loss_name: str
    curve_x: np.ndarray
    curve_y: np.ndarray
    points: np.ndarray
    tangent_slopes: np.ndarray
    steps: np.ndarray
    end_point: tuple[float, float] | None
    fixed: dict[str, float]
    shown: np.ndarray
    step_curves: np.ndarray
    held: list[dict[str, float]]
    note: str | None = None


@dataclass(eq=False, kw_only=True)
class ContourFigure(Figure):
    """The loss over two parameters (``losses[i, j]`` at ``values[i]``, ``values2[j]``).

    Every other parameter is held at ``held`` (where the run ended; for a diverged run,
    at the last step in view). ``path`` is the (k + 1, 2) array of the two parameters'
    values before each step and after the last one. When other parameters were trained
    too they moved along the path, so the path's real losses are not the picture's:
    ``path_losses`` holds the loss the picture shows under each point (the two
    parameters at the point, the others at ``held``); the run's own are in its history.
    """

    parameter: str
    parameter2: str
    loss_name: str
    values: np.ndarray
    values2: np.ndarray
    losses: np.ndarray
    path: np.ndarray
    path_losses: np.ndarray
    held: dict[str, float]
    note: str | None = None


def loss_display(loss: str | Loss | None, history: History | None) -> str:
    """The loss as the learner reads it (``SSR``): its record's display name (a loss of
    the user's own, known to a History only by name, keeps that name)."""
    if loss is None and history is not None:
        spec = LOSSES.get(history.loss_name)
        return spec.display if spec is not None else history.loss_name
    return loss_spec(loss).display


def require_steps(history: History | None, what: str) -> None:
    """Refuse a history without per-step records (:class:`DetailNeeded`: the command line
    tells its own remedy, ``--detail``)."""
    if history is not None and history.num_steps and not history.steps:
        raise DetailNeeded(
            what,
            f"{what} draws each step's value and slope, but this run kept no per-step "
            "records (a model this large keeps only the loss per step; draw its history, "
            "or train with detail=True)",
        )


def _around(visited: np.ndarray, centre: float, points: int) -> np.ndarray:
    """Values centred on ``centre`` reaching past every visited value, 30% to spare."""
    reach = float(np.max(np.abs(visited - centre), initial=0.0))
    half = max(1.3 * reach, 0.5 if reach == 0 else 0.0, 1e-6)
    return np.linspace(centre - half, centre + half, points)


def values_ahead(visited: np.ndarray, end: float, points: int) -> np.ndarray:
    """Values covering the path, with more room past the end than behind the start.

    For the seed (b3 from 0 to 2.61) this gives about -0.4 to 3.9, the range of
    StatQuest's picture: the curve's minimum and its far side are in view.
    """
    low, high = float(np.min(visited)), float(np.max(visited))
    span = max(high - low, 1e-6)
    if span <= 1e-6:
        return np.linspace(end - 0.5, end + 0.5, points)
    if end - low >= high - end:  # walking to the right
        return np.linspace(low - 0.15 * span, high + 0.5 * span, points)
    return np.linspace(low - 0.5 * span, high + 0.15 * span, points)


def values_spread(visited: np.ndarray, points: int) -> np.ndarray:
    """Values covering every visited value with 15% to spare on both sides (a run that
    overshoots to either side of the minimum)."""
    low, high = float(np.min(visited)), float(np.max(visited))
    margin = max(0.15 * (high - low), 0.5 if high == low else 0.0)
    return np.linspace(low - margin, high + margin, points)


def scan_quietly(
    model: Module, data: Dataset, loss: str | Loss, parameter: str, values: np.ndarray, **two: Any
):
    """The explainer's brute-force scan: the engine's forward pass at every value."""

    return scan(model, data, loss, parameter, values, **two)


def loss_curve(
    model: Module,
    data: Dataset,
    loss: str | Loss,
    parameter: str,
    history: History | None = None,
    values: Sequence[float] | np.ndarray | None = None,
    *,
    points: int = 201,
    size: tuple[float, float] = (6.4, 4.4),
    dpi: float = 100,
    title: str | None = None,
    label_slopes: bool = True,
    per_point: bool = False,
) -> LossCurveFigure:
    """Draw the loss against ``parameter``, and gradient descent's steps on it.

    The bold curve is the loss (the sum over the data) with the other parameters where
    the history ended. When only ``parameter`` is trained (the seed's ``main-ideas``: b3)
    every point lies on it; when others move too, each point lies on a curve of its own,
    the loss with the others at that step's values, and the title says so: with
    ``per_point=True`` those curves are drawn too (faint; by default they are left out,
    they crowd the picture). The steps are joined in order, so a run that overshoots
    shows its zig-zag. ``values`` chooses the scanned values; by default they reach past
    every value the history visited.

    >>> from chainrule.scenario import load_scenario
    >>> scenario = load_scenario("main-ideas")
    >>> trained = scenario.run()
    >>> model, history = trained.model, trained.history
    >>> fig = loss_curve(model, scenario.data, scenario.loss, "b3", history)
    >>> round(float(fig.tangent_slopes[0]), 4), fig.points[0].round(4).tolist()
    (-15.6551, [0.0, 20.4236])
    """
    name = model.scalar(parameter).name
    require_steps(history, "the loss curve")
    steps = list(history.steps) if history is not None else []
    if history is not None and steps and name not in steps[0].values:
        raise ChainruleError(
            f"the history did not train {name!r}, so it has no slopes for it; "
            f"it trained: {', '.join(list(history.trained))}"
        )
    note = divergence(history)
    in_view = steps_in_view(history) if steps else 0
    fixed = history.values_after(history.num_steps) if history is not None else {}
    if note is not None:  # the end is out of view: the others at the last step shown
        fixed = history.values_after(max(in_view - 1, 0))
    base = model.at(fixed)
    dots = np.array([[s.values[name], s.loss] for s in steps], dtype=np.float64).reshape(-1, 2)
    slopes = np.array([s.slopes[name] for s in steps], dtype=np.float64)
    numbers = np.array([s.step for s in steps], dtype=np.int64)
    end = None
    if history is not None and steps:
        end = (float(steps[-1].new_values[name]), float(history.final_loss))
    end_in_view = end is not None and note is None
    shown = _thin(in_view, MAX_POINTS)
    if values is None:
        visited = dots[:in_view, 0] if in_view else np.array([base.scalar(name).value])
        if end_in_view:
            assert end is not None
            grid = values_ahead(np.append(visited, end[0]), end[0], points)
        elif note is not None:
            grid = values_spread(visited, points)
        else:
            grid = values_ahead(visited, float(visited[-1]), points)
        # The points' own values on the grid: each lies exactly on the curve drawn for it.
        on_grid = dots[shown, 0] if end is None or not end_in_view else [*dots[shown, 0], end[0]]
        grid = np.union1d(grid, np.asarray(on_grid)[np.isfinite(on_grid)])
    else:
        grid = np.asarray(values, dtype=np.float64).ravel()
        if grid.size < 2:
            raise ChainruleError("loss_curve: give at least two values to scan")
    result = scan_quietly(base, data, loss, name, grid)
    curve_y = np.asarray(result.loss, dtype=np.float64)
    curve_x = np.asarray(result.values, dtype=np.float64)
    loss_name = loss_display(loss, history)
    others = [n for n in (list(history.trained) if history is not None else []) if n != name]
    held = [{n: float(steps[i].values[n]) for n in others} for i in shown]
    if others and per_point:  # each point was measured with the others at its step's values
        step_curves = np.array(
            [scan_quietly(base.at(h), data, loss, name, curve_x).loss for h in held],
            dtype=np.float64,
        ).reshape(len(shown), curve_x.size)
    elif others:  # not asked for: not computed
        step_curves = np.empty((0, curve_x.size))
    else:  # nothing else moves: every point is on the one curve
        step_curves = np.tile(curve_y, (len(shown), 1))

    mpl = matplotlib_figure(*size, dpi=dpi)
    ax = mpl.add_subplot()
    end_text = "at the end" if end_in_view else f"after {max(in_view - 1, 0)} steps"
    for i, curve in enumerate(step_curves if others and per_point else []):
        ax.plot(
            curve_x,
            curve,
            color=style.PINK,
            lw=1.0,
            alpha=0.45,
            zorder=1,
            label="each point's own curve: the others at its step's values" if i == 0 else None,
        )
    bold_label = f"{loss_name} against {name}"
    if others:
        bold_label = f"{loss_name}, the others {end_text}"
        if len(others) <= NAMED_OTHERS:
            bold_label += f": {_held_text(others, fixed)}"
    ax.plot(curve_x, curve_y, color=style.PINK, lw=2.6, label=bold_label, zorder=2)
    # In sight: the points, and the curve up to half again above the highest point (the
    # curve's far walls would squash the descent to a flat line at the bottom).
    marks = np.concatenate([dots[shown, 1], [end[1]] if end_in_view and end else []])
    finite_marks = marks[np.isfinite(marks)]
    top = 1.5 * float(finite_marks.max()) if finite_marks.size else np.inf
    in_sight = np.concatenate([marks, curve_y[curve_y <= top]])
    y_low, y_high = style.padded_range(in_sight, 0.06, 1e-9)
    x_low, x_high = float(curve_x.min()), float(curve_x.max())
    ax.set_xlim(x_low, x_high)
    ax.set_ylim(y_low, y_high)
    if len(shown) > 1 and (others or _turns(dots[shown, 0])):
        # The steps in order: an overshooting run zig-zags across the valley, and the
        # points of a run that moves other parameters too are off the bold curve.
        path = dots[shown]
        if end_in_view and end is not None:
            path = np.vstack([path, end])
        ax.plot(
            path[:, 0],
            path[:, 1],
            color=style.GREY,
            lw=1.0,
            ls=(0, (4, 2)),
            zorder=2.5,
            label="the steps, in order",
        )
    if len(shown):
        chosen = shown[_thin(len(shown), MAX_TANGENTS)]
        _draw_tangents(
            ax, mpl, dots[chosen], slopes[chosen], (x_low, x_high), (y_low, y_high), label_slopes
        )
        if len(shown) == len(dots):
            every = "each step"
        elif note is not None and len(shown) == in_view:
            every = f"the first {in_view} of {len(dots)} steps"
        else:
            every = f"{len(shown)} of {len(dots)} steps"
        ax.scatter(
            dots[shown, 0],
            dots[shown, 1],
            s=30,
            color=style.BLACK,
            zorder=7,  # above the slopes written beside them
            label=f"{every}: value, {loss_name}",
        )
    if end_in_view and end is not None:
        ax.scatter(
            [end[0]],
            [end[1]],
            s=70,
            marker="*",
            color=style.GREEN,
            zorder=8,
            label=f"end: {name} = {significant(end[0])}",
        )
    ax.set_xlabel(name)
    ax.set_ylabel(loss_name)
    default_title = f"{loss_name} against {name}"
    if others:
        default_title += (
            f"\n{names_text(others)} {'move' if len(others) > 1 else 'moves'} too: "
            "each point lies on its own step's curve" + (" (faint)" if per_point else "")
        )
    if note is not None:
        style.warn(mpl, f"The run {note}{first_steps(in_view, len(steps))}")
    ax.grid(alpha=0.25)
    style.place_legend(ax)
    # After the legend: placed beside the axes, it narrows them and moves their centre.
    style.axes_title(
        ax, title if title is not None else default_title, 10.0 if others and title is None else 12
    )
    return LossCurveFigure(
        kind="loss-curve",
        figure=mpl,
        parameter=name,
        loss_name=loss_name,
        curve_x=curve_x,
        curve_y=curve_y,
        points=dots,
        tangent_slopes=slopes,
        steps=numbers,
        end_point=end,
        fixed={k: v for k, v in fixed.items() if k != name},
        shown=shown,
        step_curves=step_curves,
        held=held,
        note=note,
    )


#: Up to this many other parameters are named one by one; more are counted.
NAMED_OTHERS = 3


def names_text(others: list[str]) -> str:
    """``'w4'``, ``'w4 and b3'`` or ``'the other 6 trained parameters'``."""
    if len(others) > NAMED_OTHERS:
        return f"the other {len(others)} trained parameters"
    return " and ".join([", ".join(others[:-1]), others[-1]] if len(others) > 1 else others)


def _held_text(others: list[str], values: dict[str, float]) -> str:
    """``'w4 = -2.3, b3 = 2.61'``, or ``'the other 6 trained parameters'``."""
    if len(others) > NAMED_OTHERS:
        return names_text(others)
    return ", ".join(f"{n} = {significant(values[n])}" for n in others)


def _turns(values: np.ndarray) -> bool:
    """Whether a run's values change direction (it overshoots and comes back).

    >>> _turns(np.array([0.0, 1.5, 2.2, 2.5])), _turns(np.array([0.0, 4.7, 0.9, 4.0]))
    (False, True)
    """
    moves = np.sign(np.diff(values[np.isfinite(values)]))
    moves = moves[moves != 0]
    return bool(np.any(moves[1:] != moves[:-1]))


def _crosses(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Whether the segments ``a`` and ``b`` (each ``x0, y0, x1, y1``) cross.

    >>> _crosses((0, 0, 2, 2), (0, 2, 2, 0)), _crosses((0, 0, 1, 0), (0, 1, 1, 1))
    (True, False)
    """

    def side(p: tuple[float, ...], q: tuple[float, ...], r: tuple[float, float]) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    p, q = (a[0], a[1]), (a[2], a[3])
    r, t = (b[0], b[1]), (b[2], b[3])
    return side(p, q, r) * side(p, q, t) < 0 and side(r, t, p) * side(r, t, q) < 0


def _thin(count: int, most: int) -> np.ndarray:
    """Indices of at most ``most`` of ``count`` items, evenly spread, first and last kept."""
    if count <= most:
        return np.arange(count)
    return np.unique(np.round(np.linspace(0, count - 1, most)).astype(int))


def _draw_tangents(
    ax: Any,
    mpl: Any,
    dots: np.ndarray,
    slopes: np.ndarray,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    label_slopes: bool,
) -> None:
    """A short tangent segment at each point, all of one length on the page, and the
    slope written beside the points where the text does not cover another label.

    The half-width in data units is chosen so the segment measures a fixed length on the
    page whatever its slope: steep tangents do not shoot off the picture.
    """
    width, height = mpl.get_size_inches()
    x_scale = 0.8 * width / (xlim[1] - xlim[0])  # about inches per data unit
    y_scale = 0.8 * height / (ylim[1] - ylim[0])
    dx = TANGENT_HALF_LENGTH / np.sqrt(x_scale**2 + (slopes * y_scale) ** 2)
    drawn: list[tuple[float, float]] = []
    segments: list[tuple[float, ...]] = []
    kept_all: list[tuple[float, float, float]] = []  # the points whose tangent is drawn
    for (x, y), slope, h in zip(dots, slopes, dx, strict=True):
        px, py = (x - xlim[0]) * x_scale, (y - ylim[0]) * y_scale
        if any(np.hypot(px - qx, py - qy) < 0.3 for qx, qy in drawn):
            continue  # the points crowd near the minimum: one tangent there is enough
        segment = (
            (x - h - xlim[0]) * x_scale,
            (y - slope * h - ylim[0]) * y_scale,
            (x + h - xlim[0]) * x_scale,
            (y + slope * h - ylim[0]) * y_scale,
        )
        if any(_crosses(segment, other) for other in segments):
            continue  # two tangents across the valley would cross in an X
        drawn.append((px, py))
        segments.append(segment)
        kept_all.append((x, y, slope))
        ax.plot(
            [x - h, x + h],
            [y - slope * h, y + slope * h],
            color=style.TANGENT,
            lw=1.5,
            zorder=3,
            solid_capstyle="round",
        )
    if not label_slopes:
        return
    boxes: list[tuple[float, float, float, float]] = []
    page_width = 0.8 * width
    for x, y, slope in kept_all:
        text = f"slope {significant(slope)}"
        px, py = (x - xlim[0]) * x_scale, (y - ylim[0]) * y_scale
        w, h = 0.065 * len(text), 0.16  # the text's size in inches, about
        to_left = px + 0.12 + w > page_width
        x0 = px - 0.12 - w if to_left else px + 0.12
        box = (x0 - 0.03, py + 0.05, x0 + w + 0.03, py + 0.05 + h)
        if any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in boxes):
            continue  # would cover a slope already written
        boxes.append(box)
        ax.annotate(
            text,
            (x, y),
            xytext=(-9 if to_left else 9, 4),
            textcoords="offset points",
            ha="right" if to_left else "left",
            fontsize="small",
            color=style.TANGENT,
            zorder=6,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
        )


#: A contour plot has at most this many rings.
RINGS = 15


def contour_levels(losses: np.ndarray, rings: int = RINGS) -> np.ndarray:
    """Contour levels that show the valley, however the loss is spread over the grid.

    Quantiles of the DISTINCT values (to 6 significant digits): a plateau where a ReLU is
    dead is one value, not most of the levels, and the rings spread evenly over the
    picture however many decades the loss spans (the exact fit of three-parameters
    reaches 1e-7). When the distinct values are too few for that, the levels are spaced
    evenly on a log scale from the lowest to the highest loss (linear if one is <= 0).

    >>> flat = np.r_[np.full(95, 0.688), np.linspace(1.0, 6.38e4, 5)]
    >>> levels = contour_levels(flat)
    >>> len(levels) >= 8, float(levels[0]), float(levels[-1])
    (True, 0.688, 63800.0)
    """
    finite = np.asarray(losses, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return np.array([0.0, 1.0])
    low, high = float(finite.min()), float(finite.max())
    if high <= low:
        return np.array([low, low + max(abs(low), 1.0)])
    scale = 10.0 ** np.floor(np.log10(np.abs(finite), where=finite != 0, out=np.zeros_like(finite)))
    distinct = np.unique(np.round(finite / scale, 5) * scale)
    levels = np.unique(np.quantile(distinct, np.linspace(0.0, 1.0, rings)))
    if levels.size < rings // 2:
        if low > 0:
            levels = np.geomspace(low, high, rings)
        else:
            levels = np.linspace(low, high, rings)
    levels[0], levels[-1] = low, high  # the rounding must not leave a loss out
    return np.unique(levels)


def contour(
    model: Module,
    data: Dataset,
    loss: str | Loss,
    parameter: str,
    parameter2: str,
    history: History | None = None,
    values: Sequence[float] | np.ndarray | None = None,
    values2: Sequence[float] | np.ndarray | None = None,
    *,
    points: int = 61,
    size: tuple[float, float] = (6.0, 4.8),
    dpi: float = 100,
    title: str | None = None,
) -> ContourFigure:
    """Draw the loss over two parameters and the path gradient descent took across it.

    The other parameters are held where the run ended; when some of them were trained
    the title names them and their values (they moved along the path, so the picture is
    a slice of the loss the run saw).

    >>> from chainrule.scenario import load_scenario
    >>> scenario = load_scenario("three-parameters")
    >>> trained = scenario.run()
    >>> model, history = trained.model, trained.history
    >>> fig = contour(model, scenario.data, scenario.loss, "w3", "w4", history, points=21)
    >>> fig.losses.shape, fig.path[0].tolist()
    ((21, 21), [0.36, 0.63])
    """
    first, second = model.scalar(parameter).name, model.scalar(parameter2).name
    if first == second:
        raise ChainruleError(f"contour: choose two different parameters, not {first!r} twice")
    require_steps(history, "the contour plot")
    steps = list(history.steps) if history is not None else []
    note = divergence(history)
    # The steps taken that the path shows: all, or of a diverged run those in view.
    last = history.num_steps if steps else 0
    if note is not None and steps:
        last = max(steps_in_view(history) - 1, 0)
    fixed = history.values_after(last) if history is not None else {}
    base = model.at(fixed)
    at = {n: base.scalar(n).value for n in (first, second)}  # an untrained one stays put
    visited = [history.values_after(k) for k in range(last + 1)] if steps else []
    path = np.array(
        [[v.get(first, at[first]), v.get(second, at[second])] for v in visited], dtype=np.float64
    ).reshape(-1, 2)
    current = np.array([base.scalar(first).value, base.scalar(second).value])
    axes_values = []
    for j, given in enumerate((values, values2)):
        if given is not None:
            axes_values.append(np.asarray(given, dtype=np.float64).ravel())
            continue
        column = path[:, j][np.isfinite(path[:, j])] if len(path) else np.array([current[j]])
        axes_values.append(_around(np.append(column, current[j]), current[j], points))
    result = scan_quietly(
        base, data, loss, first, axes_values[0], parameter2=second, values2=axes_values[1]
    )
    losses = np.asarray(result.loss, dtype=np.float64)
    v1 = np.asarray(result.values, dtype=np.float64)
    v2 = np.asarray(result.values2, dtype=np.float64)
    loss_name = loss_display(loss, history)
    others = [n for n in (list(history.trained) if steps else []) if n not in (first, second)]
    held = {n: float(fixed[n]) for n in others}
    # The loss under each point of the path, on this slice (the others held).
    path_losses = np.array(
        [
            scan_quietly(base, data, loss, first, [a], parameter2=second, values2=[b]).loss[0, 0]
            if np.isfinite(a) and np.isfinite(b)
            else np.nan
            for a, b in path
        ],
        dtype=np.float64,
    )

    mpl = matplotlib_figure(*size, dpi=dpi)
    ax = mpl.add_subplot()
    finite = losses[np.isfinite(losses)]
    if finite.size == 0:
        raise ChainruleError(f"contour: the {loss_name} is not finite anywhere on the grid")
    levels = contour_levels(finite)
    from matplotlib import colormaps
    from matplotlib.colors import BoundaryNorm
    from matplotlib.ticker import FuncFormatter

    cmap = colormaps["RdPu_r"]
    norm = BoundaryNorm(levels, ncolors=cmap.N)  # each ring its own shade
    filled = ax.contourf(v1, v2, losses.T, levels=levels, norm=norm, cmap=cmap)
    ax.contour(v1, v2, losses.T, levels=levels, colors="white", linewidths=0.5, alpha=0.7)
    bar = mpl.colorbar(
        filled,
        ax=ax,
        ticks=levels[::2],
        spacing="uniform",
        format=FuncFormatter(lambda v, _: significant(v)),
    )
    bar.set_label(loss_name)
    if len(path):
        from matplotlib import patheffects

        ax.plot(
            path[:, 0],
            path[:, 1],
            color="white",
            lw=1.8,
            zorder=4,
            marker="o" if len(path) <= 50 else None,
            ms=3.5,
            mec=style.BLACK,
            mew=0.6,
            # A dark edge: the white line shows on the light rings and in the legend's box.
            path_effects=[
                patheffects.Stroke(linewidth=3.4, foreground=style.BLACK),
                patheffects.Normal(),
            ],
            label="gradient descent",
        )
        ax.scatter(*path[0], s=70, color="white", edgecolors=style.BLACK, zorder=5, label="start")
    if len(path) > 1:
        ax.scatter(
            *path[-1],
            s=200,
            marker="*",
            color="#ffd43b",
            edgecolors=style.BLACK,
            linewidths=0.8,
            zorder=6,
            label="end" if note is None else f"after {last} step{'s' if last != 1 else ''}",
        )
    ax.set_xlim(v1.min(), v1.max())
    ax.set_ylim(v2.min(), v2.max())
    if len(path):
        style.place_legend(ax)
    ax.set_xlabel(first)
    ax.set_ylabel(second)
    default_title = f"{loss_name} over {first} and {second}"
    if others:
        where = "where the run ended" if note is None else f"after {last} steps"
        default_title += f"\n{_held_text(others, held)} held {where}"
        if len(others) <= NAMED_OTHERS:
            default_title += f" ({'it' if len(others) == 1 else 'they'} moved too)"
    # Wrapped to the axes and the colour bar: a long list of held values ran off the left.
    style.axes_title(ax, title if title is not None else default_title, 10.0 if others else 12.0)
    if note is not None:
        style.warn(mpl, f"The run {note}{first_steps(last, len(steps))}")
    return ContourFigure(
        kind="contour",
        figure=mpl,
        parameter=first,
        parameter2=second,
        loss_name=loss_name,
        values=v1,
        values2=v2,
        losses=losses,
        path=path,
        path_losses=path_losses,
        held=held,
        note=note,
    )
