"""Gradient descent as a film: the squiggle and the loss curve, one frame per step.

The left panel is the fit after ``k`` steps (the model replayed at the history's values),
the right panel the loss curve with the point and the tangent of step ``k + 1``: the same
numbers as :func:`~chainrule.plots.squiggle` and :func:`~chainrule.plots.loss_curve`.
Saved as a GIF (Pillow, which matplotlib brings along) or as HTML with playback buttons.

>>> from chainrule.scenario import load_scenario
>>> s = load_scenario("main-ideas")
>>> trained = s.run()
>>> model, run = trained.model, trained.history
>>> film = animation(model, s.data, s.loss, "b3", run, dpi=40)
>>> film.frames[:3], len(film.frames)
([0, 1, 2], 11)
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.datasets import Dataset
from chainrule.errors import ChainruleError
from chainrule.history import History
from chainrule.losses import Loss
from chainrule.nn.module import Module
from chainrule.plots import _style as style
from chainrule.plots._base import Figure, matplotlib_figure, require_matplotlib
from chainrule.plots.loss import (
    loss_display,
    names_text,
    require_steps,
    scan_quietly,
    values_ahead,
    values_spread,
)
from chainrule.plots.replay import divergence, first_steps, steps_in_view
from chainrule.plots.squiggle import class_scores, when_text
from chainrule.text import significant

#: Long runs are thinned to at most this many frames (the first and last always kept).
MAX_FRAMES = 60
ANIMATION_FORMATS: tuple[str, ...] = ("gif", "html")
#: A classifier's film (a picture of the plane per frame) has at most this many frames.
MAX_DECISION_FRAMES = 30


@dataclass(eq=False, kw_only=True)
class AnimationFigure(Figure):
    """The film and its numbers: ``frames`` holds the number of steps taken in each frame;
    ``curves[i]`` the fit over ``curve_x`` in frame ``i``; ``points[i]`` the (value, loss)
    shown on the loss curve and ``slopes[i]`` its tangent's slope (NaN at the end).
    ``frame_curves[i]`` is the loss curve drawn in frame ``i``: the loss against the
    parameter over ``loss_x`` with the other trained parameters at that frame's values
    (``loss_y``, where the run ended, when nothing else is trained)."""

    parameter: str
    frames: list[int]
    curve_x: np.ndarray
    curves: np.ndarray
    loss_x: np.ndarray
    loss_y: np.ndarray
    points: np.ndarray
    slopes: np.ndarray
    frame_curves: np.ndarray
    fps: float
    animation: Any = None
    #: A classifier's film: the accuracy in each frame (``curves[i]`` is then the
    #: probability of class 1, or the predicted class, over ``curve_x`` x the y grid).
    accuracies: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def _write(self, path: str, fmt: str, dpi: float | None) -> None:
        write_film(
            self.animation,
            path,
            fmt,
            self.fps,
            dpi or self.figure.dpi,
            f"gradient descent on {self.parameter}",
        )

    def to_html(self) -> str:
        """The film as an HTML fragment with playback buttons (frames inlined as PNG);
        saved as ``.html`` it is wrapped in a page of its own. Everything it shows is in
        it: no icon font or script is fetched from elsewhere, so it plays offline."""
        return self_contained(self.animation.to_jshtml(fps=self.fps, default_mode="once"))

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_png_(self) -> bytes | None:
        return None  # notebooks show the playable HTML


def start_film(figure: Any, draw: Any, frames: int, fps: float) -> Any:
    """The film of ``figure``: ``draw(0)`` lays it out once (see :func:`freeze_layout`),
    then matplotlib draws ``draw(i)`` for each frame when the film is saved or shown."""
    from matplotlib.animation import FuncAnimation

    draw(0)
    freeze_layout(figure)
    film = FuncAnimation(figure, draw, frames=frames, interval=1000 / fps, repeat=False)
    # A film left unsaved is not a mistake here: matplotlib need not warn when it is
    # garbage-collected without having been drawn.
    film._draw_was_started = True
    return film


def freeze_layout(figure: Any) -> None:
    """Lay the film's figure out once, from its first frame, and keep that layout: each
    frame is drawn many times faster, and the picture does not jump between frames."""
    style.settle(figure)
    figure.set_layout_engine("none")


def write_film(film: Any, path: str, fmt: str, fps: float, dpi: float, title: str) -> None:
    """Write a matplotlib animation as a GIF, or as an HTML page that plays it offline."""
    if fmt == "html":
        page = (
            '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title></head>\n<body>\n"
            f"{self_contained(film.to_jshtml(fps=fps, default_mode='once'))}\n</body>\n</html>\n"
        )
        Path(path).write_text(page, encoding="utf-8")
        return
    from matplotlib.animation import PillowWriter

    film.save(path, writer=PillowWriter(fps=fps), dpi=dpi)


#: The player's buttons, drawn with characters instead of matplotlib's icon font (which
#: its HTML loads from a CDN: offline, the buttons were blank).
BUTTON_TEXT = {
    "fa-minus": "&minus;",
    "fa-fast-backward": "&#9664;&#9664;",
    "fa-step-backward": "|&#9664;",
    "fa-play fa-flip-horizontal": "&#9664;",
    "fa-pause": "&#10074;&#10074;",
    "fa-play": "&#9654;",
    "fa-step-forward": "&#9654;|",
    "fa-fast-forward": "&#9654;&#9654;",
    "fa-plus": "+",
}


def self_contained(html: str) -> str:
    r"""matplotlib's player page with nothing loaded from the network: its icon font's
    stylesheet link is dropped and each icon becomes characters; anything else that
    would load from an address is refused.

    >>> self_contained('<link href="https://cdn/fa.css">\n<i class="fa fa-play"></i>')
    '&#9654;'
    """

    html = re.sub(r"<link[^>]*?href=\"https?://[^\"]*\"[^>]*>\s*", "", html)

    def button(match: re.Match[str]) -> str:
        icon = match.group(1).removeprefix("fa ").strip()
        return BUTTON_TEXT.get(icon, icon.removeprefix("fa-").replace("-", " "))

    html = re.sub(r'<i class="([^"]*)"></i>', button, html)
    loaded = re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html)
    if loaded:  # pragma: no cover - a matplotlib that loads something new
        raise ChainruleError(
            f"the animation's HTML would load a file from the network ({loaded.group(0)}...); "
            "save it as .gif instead"
        )
    return html


def frame_steps(total: int, most: int = MAX_FRAMES) -> list[int]:
    """The numbers of steps taken shown in each frame: all of 0..total, or ``most`` of them.

    >>> frame_steps(3), frame_steps(1000, 5)
    ([0, 1, 2, 3], [0, 250, 500, 750, 1000])
    """
    if total + 1 <= most:
        return list(range(total + 1))
    return sorted(set(np.round(np.linspace(0, total, most)).astype(int).tolist()))


def animation(
    model: Module,
    data: Dataset,
    loss: str | Loss,
    parameter: str | None,
    history: History | None,
    *,
    max_frames: int = MAX_FRAMES,
    fps: float = 2.0,
    points: int = 121,
    size: tuple[float, float] = (10.0, 4.0),
    dpi: float = 80,
) -> AnimationFigure:
    """Animate gradient descent on ``parameter``: the fit and the loss curve, step by step.

    For a classifier over two inputs the film shows its decision regions after each
    step instead, beside the loss per step (``parameter`` is not needed then).

    The other parameters follow the history too, and so does the loss curve: in each
    frame it is the loss against ``parameter`` with the others at that frame's values,
    the curve on which the frame's point and tangent lie.
    """
    require_matplotlib()
    require_steps(history, "the animation")
    total = history.num_steps
    if total == 0:
        raise ChainruleError("the history has no steps to animate")
    X = model.feed(data)
    if X.shape[1] == 2 and data.task in ("binary", "multiclass"):
        return _decision_film(model, data, history, max_frames, fps, size, dpi)
    if parameter is None:
        raise ChainruleError("name the parameter whose loss curve the animation draws")
    name = model.scalar(parameter).name
    steps = history.steps
    if name not in steps[0].values:
        raise ChainruleError(f"the history did not train {name!r}; it has no slopes for it")
    if X.shape[1] != 1:
        raise ChainruleError(
            f"the animation draws the fit over one input, or decision regions over two "
            f"inputs of a classifier; the model reads {X.shape[1]} (task {data.task!r})"
        )
    diverged = divergence(history)
    # A run that diverged is shown while its numbers stay in view: its first overshoots.
    last = total if diverged is None else max(steps_in_view(history) - 1, 0)
    frames = frame_steps(last, max(2, int(max_frames)))
    x = X[:, 0]
    grid = np.union1d(np.linspace(x.min(), x.max(), points), x)
    curves = np.stack([model.at(history.values_after(k)).predict(grid[:, None]) for k in frames])
    dots = np.array(
        [
            [steps[k].values[name], steps[k].loss]
            if k < total
            else [steps[-1].new_values[name], history.final_loss]
            for k in frames
        ]
    )
    slopes = np.array([steps[k].slopes[name] if k < total else np.nan for k in frames])
    visited = np.array([s.values[name] for s in steps[:last]] + [history.values_after(last)[name]])
    if diverged is None:
        scanned_values = values_ahead(visited, float(visited[-1]), points)
    else:
        scanned_values = values_spread(visited, points)
    # Each frame's point on the grid: it lies exactly on the curve drawn with it.
    scanned_values = np.union1d(scanned_values, dots[np.isfinite(dots[:, 0]), 0])
    base = model.at(history.values_after(last))
    scanned = scan_quietly(base, data, loss, name, scanned_values)
    loss_x = np.asarray(scanned.values, dtype=np.float64)
    loss_y = np.asarray(scanned.loss, dtype=np.float64)
    loss_name = loss_display(loss, history)
    others = [n for n in list(history.trained) if n != name]
    if others:  # the loss was measured with the others at each step's values: so is the curve
        frame_curves = np.array(
            [
                scan_quietly(model.at(history.values_after(k)), data, loss, name, loss_x).loss
                for k in frames
            ],
            dtype=np.float64,
        )
    else:
        frame_curves = np.tile(loss_y, (len(frames), 1))

    mpl = matplotlib_figure(*size, dpi=dpi)
    left, right = mpl.subplots(1, 2)
    left.scatter(x, data.target, s=40, color=style.BLACK, zorder=4)
    (fit,) = left.plot(grid, curves[0], color=style.GREEN, lw=2.4)
    low, high = style.padded_range(np.concatenate([curves.ravel(), data.target]), 0.06, 1e-9)
    left.set_ylim(low, high)
    left.set_xlabel((model.input_names or data.input_names)[0])
    left.set_ylabel(data.target_name)
    left.grid(alpha=0.25)
    heading = left.set_title("", fontsize="medium")
    (loss_line,) = right.plot(loss_x, frame_curves[0], color=style.PINK, lw=2.4)
    top = 1.5 * float(np.nanmax(dots[:, 1]))  # the walls far above the points are cut
    y_low, y_high = style.padded_range(
        np.concatenate([dots[:, 1], frame_curves[frame_curves <= top]]), 0.06, 1e-9
    )
    right.set_xlim(loss_x.min(), loss_x.max())
    right.set_ylim(y_low, y_high)
    right.set_xlabel(name)
    right.set_ylabel(loss_name)
    right.grid(alpha=0.25)
    if others:
        right.set_title(
            f"the curve: {names_text(others)} at this step's values\n"
            "grey: earlier steps, each on a curve of its own",
            fontsize="small",
        )
    trail = right.scatter([], [], s=24, color=style.GREY, zorder=3)
    (dot,) = right.plot([], [], "o", color=style.BLACK, ms=7, zorder=5)
    (tangent,) = right.plot([], [], color=style.TANGENT, lw=1.6, zorder=4)
    note = right.text(
        0.03, 0.95, "", transform=right.transAxes, va="top", fontsize="small", color=style.TANGENT
    )
    width, height = mpl.get_size_inches()
    x_scale = width / 2 / (loss_x.max() - loss_x.min())
    y_scale = height / (y_high - y_low)

    def draw(i: int) -> tuple[Any, ...]:
        k = frames[i]
        fit.set_ydata(curves[i])
        loss_line.set_ydata(frame_curves[i])
        value, loss_value = dots[i]
        heading.set_text(f"after {k} step{'s' if k != 1 else ''}: {name} = {significant(value)}")
        trail.set_offsets(dots[: i + 1])
        dot.set_data([value], [loss_value])
        if np.isfinite(slopes[i]):
            h = 0.5 / np.sqrt(x_scale**2 + (slopes[i] * y_scale) ** 2)
            tangent.set_data(
                [value - h, value + h], [loss_value - slopes[i] * h, loss_value + slopes[i] * h]
            )
            note.set_text(
                f"step {k + 1}: slope {significant(slopes[i])}, "
                f"step size {significant(steps[k].step_sizes[name])}"
            )
        else:
            tangent.set_data([], [])
            note.set_text(f"end: {loss_name} = {significant(loss_value)}")
        return fit, loss_line, trail, dot, tangent, note, heading

    if diverged is not None:
        style.warn(mpl, f"The run {diverged}{first_steps(last + 1, total)}")
    film = start_film(mpl, draw, len(frames), fps)
    return AnimationFigure(
        kind="animation",
        figure=mpl,
        formats=ANIMATION_FORMATS,
        parameter=name,
        frames=frames,
        curve_x=grid,
        curves=curves,
        loss_x=loss_x,
        loss_y=loss_y,
        frame_curves=frame_curves,
        points=dots,
        slopes=slopes,
        fps=fps,
        animation=film,
    )


def _decision_film(
    model: Module,
    data: Dataset,
    history: History | None,
    max_frames: int,
    fps: float,
    size: tuple[float, float],
    dpi: float,
) -> AnimationFigure:
    """Decision regions over two inputs after each step, beside the loss per step."""

    total = history.num_steps
    diverged = divergence(history)
    last = total if diverged is None else max(steps_in_view(history) - 1, 0)
    frames = frame_steps(last, max(2, min(int(max_frames), MAX_DECISION_FRAMES)))
    X = model.feed(data)
    labels = np.asarray(data.target).astype(int)
    (x_low, x_high), (y_low, y_high) = (style.padded_range(X[:, j], 0.08) for j in (0, 1))
    gx, gy = np.linspace(x_low, x_high, 90), np.linspace(y_low, y_high, 90)
    mesh = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
    fields, accuracies = [], []
    for k in frames:
        snapshot = model.at(history.values_after(k))
        scores, at_points = class_scores(snapshot, mesh), class_scores(snapshot, X)
        if scores.ndim == 1:
            fields.append(scores.reshape(gy.size, gx.size))
            predicted = (at_points >= 0.5).astype(int)
        else:
            fields.append(scores.argmax(axis=1).reshape(gy.size, gx.size).astype(float))
            predicted = at_points.argmax(axis=1)
        accuracies.append(float(np.mean(predicted == labels)))
    binary = np.ndim(class_scores(model.at(), X[:1])) == 1
    losses = history.losses_with_final()
    loss_name = loss_display(None, history)

    mpl = matplotlib_figure(*size, dpi=dpi)
    left, right = mpl.subplots(1, 2, width_ratios=[1.1, 1.0])
    from matplotlib.colors import LinearSegmentedColormap, ListedColormap

    # An image, not a mesh: one bitmap per frame draws many times faster.
    where = {"extent": (x_low, x_high, y_low, y_high), "origin": "lower", "aspect": "auto"}
    if binary:
        cmap = LinearSegmentedColormap.from_list(
            "classes", [style.CLASS_COLOURS[0], "#f7f7f7", style.CLASS_COLOURS[1]]
        )
        image = left.imshow(fields[0], cmap=cmap, vmin=0, vmax=1, alpha=0.75, **where)
    else:
        count = int(labels.max()) + 1
        cmap = ListedColormap(style.CLASS_COLOURS[:count])
        image = left.imshow(fields[0], cmap=cmap, vmin=-0.5, vmax=count - 0.5, alpha=0.4, **where)
    for label in np.unique(labels):
        left.scatter(
            *X[labels == label].T,
            s=12,
            color=style.CLASS_COLOURS[label % len(style.CLASS_COLOURS)],
            edgecolors="white",
            linewidths=0.4,
            label=f"class {label}",
        )
    left.set_xlim(x_low, x_high)
    left.set_ylim(y_low, y_high)
    left.set_xlabel(data.input_names[0])
    left.set_ylabel(data.input_names[1])
    heading = left.set_title("", fontsize="medium")
    bar = mpl.colorbar(image, ax=left, fraction=0.05, pad=0.02)
    bar.set_label("P(class 1)" if binary else "predicted class")
    shown = np.arange(min(losses.size, last + 1))
    right.plot(shown, losses[shown], color=style.PINK, lw=2.0)
    (dot,) = right.plot([], [], "o", color=style.BLACK, ms=7, zorder=5)
    right.set_xlabel("steps taken")
    right.set_ylabel(loss_name)
    right.set_title(f"{loss_name} before each step", fontsize="medium")
    right.grid(alpha=0.25)
    mpl.legend(
        *left.get_legend_handles_labels(),
        loc="outside lower center",
        ncols=4,
        fontsize="small",
        frameon=False,
    )

    def draw(i: int) -> tuple[Any, ...]:
        k = frames[i]
        image.set_data(fields[i])
        heading.set_text(f"{when_text(k, total)}: accuracy {accuracies[i]:.0%}")
        if k < losses.size:
            dot.set_data([k], [losses[k]])
        return image, heading, dot

    if diverged is not None:
        style.warn(mpl, f"The run {diverged}{first_steps(last + 1, total)}")
    film = start_film(mpl, draw, len(frames), fps)
    return AnimationFigure(
        kind="animation",
        figure=mpl,
        formats=ANIMATION_FORMATS,
        parameter="",
        frames=frames,
        curve_x=gx,
        curves=np.stack(fields),
        loss_x=shown.astype(np.float64),
        loss_y=losses[shown],
        frame_curves=np.empty((0, 0)),
        points=np.column_stack([frames, [losses[min(k, losses.size - 1)] for k in frames]]),
        slopes=np.full(len(frames), np.nan),
        fps=fps,
        animation=film,
        accuracies=np.array(accuracies),
    )
