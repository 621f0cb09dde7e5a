"""What each hidden unit computes, over the input: a small picture per unit.

TensorFlow Playground draws, on each neuron, what it outputs over the input plane. This
does the same from the engine's forward pass: for one input a curve per unit (the seed's
two softplus curves ``y1`` and ``y2``, as StatQuest draws them), for two inputs a heatmap
per unit over the plane, with the data points on it. A formula's hidden units are its
named nodes that the network diagram draws (``y1``, ``y2``); a layer model's are the units
of every layer but the last, after their activation.

>>> from chainrule.scenario import load_scenario
>>> s = load_scenario("main-ideas")
>>> fig = units(s.build_model(), s.data, points=5)
>>> list(fig.outputs), fig.outputs["y1"].shape
(['y1', 'y2'], (5,))
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from chainrule.datasets import Dataset
from chainrule.errors import ChainruleError
from chainrule.nn import activation_module
from chainrule.nn.module import Module
from chainrule.plots import _style as style
from chainrule.plots._base import Figure, matplotlib_figure
from chainrule.plots.network import formula_diagram, layer_stack
from chainrule.tensor import Tensor, no_grad

#: At most this many units are drawn per layer (the first ones).
MAX_UNITS_PER_LAYER = 8


@dataclass(eq=False, kw_only=True)
class UnitsFigure(Figure):
    """``outputs[name]`` is what the unit ``name`` computes over the grid: shape (m,)
    over ``grid`` for one input, (m, m) over ``grid`` x ``grid2`` for two."""

    input_names: tuple[str, ...]
    grid: np.ndarray
    grid2: np.ndarray | None
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    layers: list[list[str]] = field(default_factory=list)


def hidden_outputs(model: Module, X: np.ndarray) -> list[list[tuple[str, np.ndarray]]]:
    """Per hidden layer, each unit's name and its outputs for the rows of ``X`` (the
    engine's forward pass; the model is not changed).

    >>> from chainrule.nn import MLP
    >>> [[name for name, _ in layer] for layer in hidden_outputs(MLP([1, 2, 1]), np.zeros((3, 1)))]
    [['hidden[0]', 'hidden[1]']]
    """
    if model.formula_lines:
        nodes, _ = formula_diagram(model)  # reads the recorded graph: not under no_grad
        names = list(model.input_names or ())
        with no_grad():
            traced = model.trace({n: X[:, i] for i, n in enumerate(names)})
        columns: dict[float, list[tuple[str, np.ndarray]]] = {}
        for node in nodes:
            if node.kind == "hidden" and node.key in traced:
                values = np.broadcast_to(np.asarray(traced[node.key].data), (len(X),))
                columns.setdefault(node.x, []).append((node.key, values.astype(np.float64)))
        return [columns[x] for x in sorted(columns)]
    with no_grad():
        layers = layer_stack(model)
        h = Tensor(np.asarray(X, dtype=np.float64))
        found = []
        for prefix, layer, activation in layers[:-1]:
            h = activation_module(activation)(layer(h))
            found.append(
                [(f"{prefix}[{j}]", np.asarray(h.data[:, j])) for j in range(h.data.shape[1])]
            )
        return found


def units(
    model: Module,
    data: Dataset,
    *,
    points: int = 61,
    dpi: float = 100,
    title: str | None = None,
) -> UnitsFigure:
    """Draw what each hidden unit computes over the input (one or two inputs), at the
    model's current values; the data points are drawn on each picture."""
    X = model.feed(data)
    d = X.shape[1]
    if d not in (1, 2):
        raise ChainruleError(
            f"units are drawn over one input (curves) or two (heatmaps); the data set "
            f"'{data.name}' has {d} inputs"
        )
    names = tuple(model.input_names or data.input_names)
    ranges = [style.padded_range(X[:, j], 0.08) for j in range(d)]
    grid = np.linspace(*ranges[0], points)
    grid2 = np.linspace(*ranges[1], points) if d == 2 else None
    if d == 1:
        mesh = grid[:, None]
    else:
        mesh = np.stack(np.meshgrid(grid, grid2), axis=-1).reshape(-1, 2)
    layers = hidden_outputs(model, mesh)
    layers = [layer[:MAX_UNITS_PER_LAYER] for layer in layers]
    if not layers or not any(layers):
        raise ChainruleError("this model has no hidden units to draw (it is one layer)")
    rows, cols = len(layers), max(len(layer) for layer in layers)
    panel = 1.5 if d == 2 else 2.2
    mpl = matplotlib_figure(
        min(panel * cols + (1.0 if d == 2 else 0.4), 16.0), panel * rows + 0.6, dpi=dpi
    )
    grid_axes = mpl.subplots(rows, cols, squeeze=False)
    outputs: dict[str, np.ndarray] = {}
    peak = max(float(np.max(np.abs(v), initial=0.0)) for layer in layers for _, v in layer)
    peak = peak or 1.0
    shading = None
    for r, layer in enumerate(layers):
        for c in range(cols):
            ax = grid_axes[r][c]
            if c >= len(layer):
                ax.set_visible(False)
                continue
            name, values = layer[c]
            ax.set_title(name, fontsize=9)
            ax.tick_params(labelsize=7)
            if d == 1:
                outputs[name] = values.copy()
                ax.plot(grid, values, color=style.TERM_COLOURS[c % len(style.TERM_COLOURS)], lw=2)
                ax.axhline(0.0, color=style.LIGHT_GREY, lw=0.8, zorder=0)
                ax.set_xlabel(names[0], fontsize=8)
                ax.grid(alpha=0.25)
            else:
                assert grid2 is not None
                image = values.reshape(grid2.size, grid.size)
                outputs[name] = image.copy()
                # Playground's colours: orange below 0, blue above, white at 0.
                shading = ax.imshow(
                    image,
                    cmap="PuOr",
                    vmin=-peak,
                    vmax=peak,
                    origin="lower",
                    aspect="auto",
                    extent=(grid[0], grid[-1], grid2[0], grid2[-1]),
                )
                # The points in black and white: they show on orange and on purple.
                if data.task in ("binary", "multiclass"):
                    dark = np.asarray(data.target).astype(int) % 2 == 1
                    ax.scatter(*X[dark].T, s=4, color=style.BLACK, linewidths=0)
                    ax.scatter(*X[~dark].T, s=5, color="white", edgecolors=style.GREY, lw=0.3)
                else:
                    ax.scatter(*X.T, s=4, color=style.BLACK, linewidths=0)
                ax.set_xticks([])
                ax.set_yticks([])
    if d == 1:
        grid_axes[0][0].set_ylabel("output of the unit", fontsize=8)
    if shading is not None:
        bar = mpl.colorbar(shading, ax=grid_axes.ravel().tolist(), fraction=0.04, pad=0.02)
        bar.set_label("the unit's output", fontsize=8)
        bar.ax.tick_params(labelsize=7)
    heading = (
        title
        if title is not None
        else (f"What each hidden unit computes over {' and '.join(names)}")
    )
    mpl.suptitle(heading, fontsize=11)
    return UnitsFigure(
        kind="units",
        figure=mpl,
        input_names=names,
        grid=grid,
        grid2=grid2,
        outputs=outputs,
        layers=[[name for name, _ in layer] for layer in layers],
    )
