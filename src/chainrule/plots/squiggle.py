"""The fit: the data points and the model's curve (StatQuest's green squiggle).

For one input the curve is the model's output over a dense grid of that input; with
``decompose=True`` a formula model's output is split into the additive terms the engine
computed (for the seed: the blue ``w3 × y1`` curve, the orange ``w4 × y2`` curve, their
sum, and that sum shifted by ``b3``, the green squiggle). For two inputs and a
classification task the figure shows the decision regions under the points, as
TensorFlow Playground does.

>>> import chainrule as cr
>>> from chainrule.datasets import dosage
>>> model = cr.Formula("predicted = w * dosage + b", inputs=["dosage"])
>>> fig = squiggle(model, dosage())
>>> fig.curve_x.shape == fig.curve_y.shape
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.datasets import Dataset
from chainrule.errors import ChainruleError
from chainrule.history import History
from chainrule.nn.module import Module
from chainrule.plots import _style as style
from chainrule.plots._base import Figure, matplotlib_figure
from chainrule.plots._terms import additive_terms, recorder
from chainrule.plots.replay import StepSpec, divergence, resolve_steps
from chainrule.tensor import Tensor, sigmoid, softmax
from chainrule.text import parameter_value, significant

#: The size of a squiggle figure in inches (wider by the legend when decomposed).
DEFAULT_SIZE = (6.4, 4.4)


@dataclass(eq=False, kw_only=True)
class SquiggleFigure(Figure):
    """The data and the fitted curve(s) over one input, with the numbers drawn.

    ``curves`` maps a number of steps taken (0 = the start) to the curve over ``curve_x``;
    ``predictions`` maps it to the model's outputs at the data points; ``terms`` holds the
    decomposition of the last curve (label -> values over ``curve_x``), empty without
    ``decompose``, and ``step_terms`` the decomposition at each step drawn (one panel
    per step).
    """

    input_name: str
    output_name: str
    points_x: np.ndarray
    points_y: np.ndarray
    curve_x: np.ndarray
    curves: dict[int, np.ndarray]
    predictions: dict[int, np.ndarray]
    parameter_values: dict[int, dict[str, float]]
    terms: dict[str, np.ndarray] = field(default_factory=dict)
    step_terms: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)

    @property
    def curve_y(self) -> np.ndarray:
        """The last curve drawn (the end of training, by default)."""
        return self.curves[max(self.curves)]

    @property
    def steps(self) -> list[int]:
        """The numbers of steps taken at which curves were drawn."""
        return sorted(self.curves)


@dataclass(eq=False, kw_only=True)
class DecisionFigure(Figure):
    """Decision regions of a classifier over two inputs, with the data points.

    ``probabilities[k]`` holds, over the ``grid_x`` x ``grid_y`` mesh after ``k`` steps, the
    probability of class 1 (binary) or of the predicted class (multi-class); ``classes[k]``
    the predicted class on the mesh and ``accuracy[k]`` the share of points classified right.
    """

    input_names: tuple[str, str]
    points: np.ndarray
    labels: np.ndarray
    grid_x: np.ndarray
    grid_y: np.ndarray
    probabilities: dict[int, np.ndarray]
    classes: dict[int, np.ndarray]
    accuracy: dict[int, float]

    @property
    def steps(self) -> list[int]:
        return sorted(self.probabilities)


def _snapshots(
    model: Module,
    history: History | None,
    steps: Sequence[StepSpec] | StepSpec | None,
    values: Mapping[str, float] | Sequence[Mapping[str, float]] | None,
) -> list[tuple[int, dict[str, float], Any]]:
    """(steps taken, trained values, model copy) for each picture to draw."""
    if values is not None:
        chosen = [values] if isinstance(values, Mapping) else list(values)
        return [(i, dict(v), model.at(v)) for i, v in enumerate(chosen)]
    if history is None:
        if steps not in (None, "end", ["end"], ("end",)):
            raise ChainruleError("steps need a training history: pass history=...")
        return [(0, {}, model.at())]
    if steps is None:
        steps = ["end"]
    counts = resolve_steps(history, steps)
    return [(k, history.values_after(k), model.at(history.values_after(k))) for k in counts]


def squiggle(
    model: Module,
    data: Dataset,
    history: History | None = None,
    steps: Sequence[StepSpec] | StepSpec | None = None,
    *,
    values: Mapping[str, float] | Sequence[Mapping[str, float]] | None = None,
    decompose: bool = False,
    points: int = 201,
    size: tuple[float, float] = DEFAULT_SIZE,
    dpi: float = 100,
    title: str | None = None,
) -> SquiggleFigure | DecisionFigure:
    """Draw the data and the model's fit; return the figure and the numbers drawn.

    ``history`` (from ``train``) and ``steps`` choose when: ``"start"``, ``"end"`` (the
    default), or numbers of steps taken, several in one figure. Without a history the
    model is drawn as it is; ``values`` draws it at given parameter values instead.
    ``decompose=True`` also draws the additive terms of the output (formula models), in
    one panel per step when several steps are asked for.

    >>> import chainrule as cr
    >>> from chainrule.datasets import dosage
    >>> m = cr.Formula("y1 = softplus(w1 * dosage)\\npredicted = w2 * y1 + b",
    ...                inputs=["dosage"], values={"w1": 1.0, "w2": 2.0, "b": -1.0})
    >>> fig = squiggle(m, dosage(), decompose=True)
    >>> sorted(fig.terms)
    ['b', 'w2 × y1']
    """
    X = model.feed(data)
    snapshots = _snapshots(model, history, steps, values)
    if X.shape[1] == 2 and data.task in ("binary", "multiclass"):
        if decompose:
            raise ChainruleError("decompose=True draws curves over one input; this data has two")
        return _decision_regions(snapshots, data, history, size, dpi, title)
    if X.shape[1] != 1:
        raise ChainruleError(
            f"a squiggle is drawn over one input (a curve) or two inputs of a classification "
            f"task (decision regions); the data set '{data.name}' has {X.shape[1]} inputs "
            f"and task {data.task!r}"
        )
    x = X[:, 0]
    input_name = (model.input_names or data.input_names)[0]
    low, high = style.padded_range(x, fraction=0.0, minimum=1e-9)
    grid = np.union1d(np.linspace(low, high, max(int(points), 2)), x)  # the data x included
    curves = {k: m.predict(grid[:, None]) for k, _, m in snapshots}
    predictions = {k: m.predict(X) for k, _, m in snapshots}
    for curve in curves.values():
        if curve.ndim != 1:
            raise ChainruleError(
                f"a squiggle needs one output per point; the model gives shape {curve.shape}"
            )
    output_name = model.output_name or "prediction"
    # Decomposed, each step gets a panel of its own (five curves or more per step).
    step_terms = {k: terms_over(m, grid) for k, _, m in snapshots} if decompose else {}
    panels = len(snapshots) if decompose else 1
    if decompose and size == DEFAULT_SIZE:  # room for the legend beside the pictures
        size = (size[0] + 2.4, size[1]) if panels == 1 else (min(3.6 * panels + 2.4, 18.0), 4.0)
    mpl = matplotlib_figure(*size, dpi=dpi)
    axes = mpl.subplots(1, panels, squeeze=False, sharey=True)[0]
    single = list(history.trained) if history is not None else []
    if decompose:
        for ax, (k, vals, _) in zip(axes, snapshots, strict=True):
            _draw_terms(ax, grid, step_terms[k], output_name, value_in_legend=panels == 1)
            if panels > 1:
                label = _step_label(k, vals, single, history, values is not None)
                ax.set_title(label, fontsize="medium")
    else:
        ax = axes[0]
        colours = style.step_colours(len(curves))
        for (k, vals, _), colour in zip(snapshots, colours, strict=True):
            label = _step_label(k, vals, single, history, values is not None)
            solid = k == max(curves)
            ax.plot(
                grid,
                curves[k],
                color=colour if solid else colour,
                lw=2.4 if solid else 1.6,
                ls="-" if solid else "--",
                label=label,
                zorder=2,
            )
    for ax in axes:
        ax.scatter(x, data.target, s=46, color=style.BLACK, zorder=4, label=data.target_name)
        ax.set_xlabel(input_name)
        ax.axhline(0.0, color=style.LIGHT_GREY, lw=0.8, zorder=0)
        ax.grid(alpha=0.25)
    # The curves are the model's output (and its terms), the points the target.
    axes[0].set_ylabel(
        f"{output_name} and its terms" if decompose else f"{output_name} and {data.target_name}"
    )
    heading = title if title is not None else f"{output_name} against {input_name}"
    if panels == 1:
        axes[0].set_title(heading)
    else:
        mpl.suptitle(heading)
    if decompose:  # five entries or more: beside the pictures, where they cover nothing
        axes[-1].legend(
            fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False
        )
        for ax in axes:  # the shift's label, where no curve runs through it
            for label in ax.texts:
                if label.get_gid() == "shift":
                    style.free_place(ax, label)
    else:
        style.place_legend(axes[0])
    note = divergence(history)
    if note is not None:
        _keep_in_view(mpl, axes[0], note, data.target, curves)
    last = step_terms[snapshots[-1][0]] if decompose else []
    return SquiggleFigure(
        kind="squiggle",
        figure=mpl,
        input_name=input_name,
        output_name=output_name,
        points_x=x.copy(),
        points_y=np.asarray(data.target, dtype=np.float64).copy(),
        curve_x=grid,
        curves=curves,
        predictions=predictions,
        parameter_values={k: vals for k, vals, _ in snapshots},
        terms={t.label: _full(t.values, grid.size) for t in last},
        step_terms={
            k: {t.label: _full(t.values, grid.size) for t in terms}
            for k, terms in step_terms.items()
        },
    )


#: A diverged run's curve further than this many data spans from the data is off the chart.
OFF_CHART = 10.0


def _keep_in_view(
    mpl: Any, ax: Any, note: str, target: np.ndarray, curves: dict[int, np.ndarray]
) -> None:
    """Of a diverged run, show the data and the curves near it; say which are off the chart."""
    target = np.asarray(target, dtype=np.float64)
    low, high = style.padded_range(target, 0.1)
    middle, reach = (low + high) / 2, OFF_CHART * (high - low)
    near = {
        k: c
        for k, c in curves.items()
        if np.all(np.isfinite(c)) and np.all(abs(c - middle) < reach)
    }
    ax.set_ylim(*style.padded_range(np.concatenate([target, *near.values()]), 0.06))
    off = [k for k in curves if k not in near]
    text = f"The run {note}"
    if off:
        when = " and ".join(f"{k} step{'s' if k != 1 else ''}" for k in off)
        curves_are = "the curves after {} are" if len(off) > 1 else "the curve after {} is"
        text += f"; {curves_are.format(when)} off the chart"
    style.warn(mpl, text)


def _full(values: np.ndarray, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(values, dtype=np.float64), (n,)).copy()


@dataclass(frozen=True, eq=False)
class CurveTerm:
    """One additive term of the output over the grid: its label and its values."""

    label: str
    values: np.ndarray


def terms_over(model: Module, grid: np.ndarray) -> list[CurveTerm]:
    """The additive terms of the output over ``grid``, as the engine computes them.

    The output is traced at each grid value with every operation recorded (the input's
    own too), so a term such as ``w × (dosage + 1)`` keeps its name: in the model's own
    pass, ``dosage + 1`` would be a bare array.
    """
    if not model.formula_lines:
        raise ChainruleError(
            "decompose=True needs a formula model (it splits the output into the terms "
            f"written in the formula); this model is a {type(model).__name__}"
        )
    trace, name = recorder(model), model.inputs[0]
    labels: list[str] = []
    rows = []
    for x in grid:
        terms = additive_terms(trace({name: float(x)})[model.output_name])
        labels = labels or [t.label for t in terms]
        rows.append([float(np.asarray(t.values).ravel()[0]) for t in terms])
    columns = np.array(rows, dtype=np.float64).T
    return [CurveTerm(label, columns[i]) for i, label in enumerate(labels)]


def _draw_terms(
    ax: Any,
    grid: np.ndarray,
    terms: list[CurveTerm],
    output_name: str,
    value_in_legend: bool = True,
) -> None:
    """StatQuest's build-up: each varying term, their sum, then the constant shift.

    With several panels sharing one legend, the shift's value is written in each
    panel and left out of the legend."""
    n = grid.size
    varying = [t for t in terms if np.ptp(_full(t.values, n)) > 0]
    constant = [t for t in terms if t not in varying]
    colours = iter(style.TERM_COLOURS)
    for term in varying:
        ax.plot(
            grid, _full(term.values, n), color=next(colours, style.GREY), lw=1.8, label=term.label
        )
    total = sum((_full(t.values, n) for t in terms), np.zeros(n))
    if not constant or len(varying) < 2:
        ax.plot(grid, total, color=style.GREEN, lw=2.6, label=output_name, zorder=3)
        return
    partial = sum((_full(t.values, n) for t in varying), np.zeros(n))
    ax.plot(
        grid,
        partial,
        color=style.GREEN,
        lw=1.6,
        ls="--",
        zorder=4,
        label=_signed([t.label for t in varying]),
    )
    shift = float(total[0] - partial[0])
    names = _signed([t.label for t in constant], leading=True)
    ax.plot(
        grid,
        total,
        color=style.GREEN,
        lw=2.6,
        zorder=3,
        label=f"{output_name} = the sum {names}"
        + (f" ({parameter_value(shift)})" if value_in_legend else ""),
    )
    if shift != 0:
        i = int(np.argmax(partial)) if shift > 0 else int(np.argmin(partial))
        ax.annotate(
            "",
            xy=(grid[i], total[i]),
            xytext=(grid[i], partial[i]),
            zorder=5,
            arrowprops={"arrowstyle": "-|>", "color": style.GREY, "lw": 1.2},
        )
        ax.annotate(
            f"{names} = {parameter_value(shift)}",
            (grid[i], (partial[i] + total[i]) / 2),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize="small",
            color=style.GREY,
            gid="shift",  # moved off the curves once the figure is laid out
            arrowprops={"arrowstyle": "-", "color": style.GREY, "lw": 0.6, "shrinkA": 1},
        ).arrow_patch.set_visible(False)  # shown when the label moves away from its point


def _signed(labels: list[str], leading: bool = False) -> str:
    """Terms written as one sum: ``['b3', '-0.25']`` gives ``'b3 − 0.25'``, and with
    ``leading`` the first term's sign too: ``'+ b3 − 0.25'``.

    >>> _signed(["w3 × y1", "-b"]), _signed(["b3", "-0.25"], leading=True)
    ('w3 × y1 − b', '+ b3 − 0.25')
    """
    parts = []
    for i, label in enumerate(labels):
        minus = label.startswith("-")
        body = label[1:] if minus else label
        if i == 0 and not leading:
            parts.append(f"−{body}" if minus else body)
        else:
            parts.append(f"{'−' if minus else '+'} {body}")
    return " ".join(parts)


def _step_label(
    k: int, values: dict[str, float], trained: list[str], history: History | None, explicit: bool
) -> str:
    if explicit:
        shown = ", ".join(f"{n} = {significant(v)}" for n, v in list(values.items())[:3])
        return shown or "model"
    if history is None:
        return "model"
    when = when_text(k, history.num_steps)
    if len(trained) == 1 and trained[0] in values:
        return f"{when}: {trained[0]} = {significant(values[trained[0]])}"
    return when


def when_text(k: int, total: int) -> str:
    """``start``, ``after 3 steps`` or ``end (10 steps)``."""
    if k == 0:
        return "start"
    steps = f"{k} step{'s' if k != 1 else ''}"
    return f"end ({steps})" if k == total else f"after {steps}"


def class_scores(model: Module, X: np.ndarray) -> np.ndarray:
    """Per row: P(class 1) for one output, class probabilities (m, k) for several.

    The model's output is read as the engine made it: if its last op is a sigmoid (or a
    softmax) it is a probability already, otherwise it is a logit and goes through one.
    """
    probe = model.at()
    probe.unfreeze()
    out = probe(Tensor(X))
    last = out.op.name if out.op is not None else None
    data = out.data if out.data.ndim == 1 or out.data.shape[1] > 1 else out.data[:, 0]
    if data.ndim == 1:
        return data if last == "sigmoid" else sigmoid(Tensor(data)).data
    return data if last == "softmax" else softmax(Tensor(data), axis=-1).data


def _class_keys(mpl: Any, axes: Any, shading: Any, data: Dataset) -> None:
    """What the colours mean: the classes of the points (a legend) and the shading of the
    regions (a colour bar: P(class 1), or the predicted class)."""
    handles, labels = axes[0].get_legend_handles_labels()
    mpl.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=min(len(labels), 4),
        fontsize="small",
        frameon=False,
        title=f"the points, by {data.target_name}",
        title_fontsize="small",
    )
    bar = mpl.colorbar(shading, ax=list(axes), fraction=0.05, pad=0.02, aspect=30)
    if shading.norm.vmin is not None and shading.norm.vmin < 0:  # classes, one colour each
        count = int(round(shading.norm.vmax + 0.5))
        bar.set_ticks(range(count))
        bar.set_label("predicted class")
    else:
        bar.set_ticks([0.0, 0.25, 0.5, 0.75, 1.0])
        bar.set_label("P(class 1): black line at 0.5")


def _decision_regions(
    snapshots: list[tuple[int, dict[str, float], Any]],
    data: Dataset,
    history: History | None,
    size: tuple[float, float],
    dpi: float,
    title: str | None,
) -> DecisionFigure:
    X = snapshots[0][2].feed(data)
    labels = np.asarray(data.target).astype(int)
    (x_low, x_high), (y_low, y_high) = (style.padded_range(X[:, j], 0.08) for j in (0, 1))
    gx, gy = np.linspace(x_low, x_high, 160), np.linspace(y_low, y_high, 160)
    mesh = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)  # (160*160, 2)
    panels = len(snapshots)
    width = size[0] if panels == 1 else min(4.2 * panels, 16.0)
    mpl = matplotlib_figure(width, size[1] if panels == 1 else 4.2, dpi=dpi)
    axes = mpl.subplots(1, panels, squeeze=False)[0]
    probabilities, classes, accuracy = {}, {}, {}
    from matplotlib.colors import LinearSegmentedColormap, ListedColormap

    two = LinearSegmentedColormap.from_list(
        "classes", [style.CLASS_COLOURS[0], "#f7f7f7", style.CLASS_COLOURS[1]]
    )
    for ax, (k, _, model) in zip(axes, snapshots, strict=True):
        scores = class_scores(model, mesh)
        at_points = class_scores(model, X)
        if scores.ndim == 1:
            p, c = scores, (scores >= 0.5).astype(int)
            predicted = (at_points >= 0.5).astype(int)
            shading = ax.contourf(
                gx,
                gy,
                p.reshape(gy.size, gx.size),
                levels=np.linspace(0, 1, 11),
                cmap=two,
                alpha=0.75,
            )
            ax.contour(
                gx,
                gy,
                p.reshape(gy.size, gx.size),
                levels=[0.5],
                colors=style.BLACK,
                linewidths=1.2,
            )
        else:
            p, c = scores.max(axis=1), scores.argmax(axis=1)
            predicted = at_points.argmax(axis=1)
            cmap = ListedColormap(style.CLASS_COLOURS[: scores.shape[1]])
            shading = ax.pcolormesh(
                gx,
                gy,
                c.reshape(gy.size, gx.size),
                cmap=cmap,
                alpha=0.35,
                shading="auto",
                vmin=-0.5,
                vmax=scores.shape[1] - 0.5,
            )
        probabilities[k], classes[k] = p.reshape(gy.size, gx.size), c.reshape(gy.size, gx.size)
        accuracy[k] = float(np.mean(predicted == labels))
        for label in np.unique(labels):  # one scatter per class: the legend names each
            ax.scatter(
                X[labels == label, 0],
                X[labels == label, 1],
                color=style.CLASS_COLOURS[label % len(style.CLASS_COLOURS)],
                s=16,
                edgecolors="white",
                linewidths=0.5,
                label=f"class {label}",
            )
        ax.set_xlim(x_low, x_high)
        ax.set_ylim(y_low, y_high)
        ax.set_xlabel(data.input_names[0])
        ax.set_ylabel(data.input_names[1])
        when = when_text(k, history.num_steps) if history is not None else "model"
        ax.set_title(
            f"{when}: accuracy {accuracy[k]:.0%}" if panels > 1 or title is None else title,
            fontsize="medium",
        )
    if title is not None and panels > 1:
        mpl.suptitle(title)
    _class_keys(mpl, axes, shading, data)
    return DecisionFigure(
        kind="squiggle",
        figure=mpl,
        input_names=(data.input_names[0], data.input_names[1]),
        points=X.copy(),
        labels=labels,
        grid_x=gx,
        grid_y=gy,
        probabilities=probabilities,
        classes=classes,
        accuracy=accuracy,
    )
