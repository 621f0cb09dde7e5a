"""The backward pass drawn on the network: each edge labelled with its gradient.

The diagram is :func:`~chainrule.plots.network`'s, read from the engine's graph; the
numbers are the engine's own: one forward pass of the loss on the data, one
``backward()``, and the ``.grad`` of every parameter (frozen ones too: a frozen parameter
still has a derivative, it is only not stepped) and of every named node (``y1``,
``predicted``). Arrows point from the loss back to the parameters. :func:`backward_flow`
films it: the gradient arrives at the loss, then at the output, then one column further
back per frame, as backpropagation computes it.

>>> from chainrule.scenario import load_scenario
>>> s = load_scenario("main-ideas")
>>> fig = backward(s.build_model(), s.data, s.loss)
>>> round(fig.gradients["b3"], 4), round(float(fig.node_gradients["predicted"][0]), 4)
(-15.6551, -5.2073)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.datasets import Dataset
from chainrule.explain.model_graph import loss_node, recording_twin
from chainrule.losses import Loss
from chainrule.nn.module import Module
from chainrule.plots import _style as style
from chainrule.plots._base import Figure, require_matplotlib
from chainrule.plots.animation import self_contained, start_film, write_film
from chainrule.plots.loss import loss_display
from chainrule.plots.network import (
    Edge,
    Node,
    draw_network,
    formula_diagram,
    layer_diagram,
)
from chainrule.tensor import Tensor
from chainrule.text import significant

BACKWARD_FORMATS: tuple[str, ...] = ("gif", "html")


@dataclass(eq=False, kw_only=True)
class BackwardFigure(Figure):
    """The network with the backward pass: ``gradients`` holds d loss / d parameter for
    every scalar (frozen ones too), ``node_gradients`` d loss / d node for each named node
    (one value per data point), ``loss`` the loss where they were taken, and ``edges``
    the diagram's edges, each labelled with its weight's gradient."""

    loss_name: str
    loss: float
    gradients: dict[str, float]
    node_gradients: dict[str, np.ndarray] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)


@dataclass(eq=False, kw_only=True)
class BackwardFlowFigure(BackwardFigure):
    """:class:`BackwardFigure` as a film: ``frames[i]`` lists the node keys whose edges and
    gradients are shown in frame ``i`` (the loss first, the inputs' side last)."""

    frames: list[list[str]] = field(default_factory=list)
    fps: float = 1.0
    animation: Any = None

    def _write(self, path: str, fmt: str, dpi: float | None) -> None:

        write_film(self.animation, path, fmt, self.fps, dpi or self.figure.dpi, "backward pass")

    def to_html(self) -> str:
        """The film as a self-contained HTML fragment with playback buttons."""

        return self_contained(self.animation.to_jshtml(fps=self.fps, default_mode="once"))

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_png_(self) -> bytes | None:
        return None


def gradients_on_data(
    model: Module, data: Dataset, loss: str | Loss
) -> tuple[float, dict[str, float], dict[str, np.ndarray]]:
    """The engine's backward pass on a copy of ``model``: (loss, d loss / d each scalar,
    d loss / d each named node per data point). The model is not changed.

    >>> from chainrule.scenario import load_scenario
    >>> s = load_scenario("main-ideas")
    >>> value, grads, nodes = gradients_on_data(s.build_model(), s.data, s.loss)
    >>> round(value, 4), round(grads["w3"], 4), sorted(nodes)[:3]
    (20.4236, -16.1088, ['predicted', 'x1', 'x2'])
    """
    twin = recording_twin(model)
    twin.zero_grad()
    out = loss_node(twin, data, loss)
    named: dict[str, Tensor] = {}
    stack, seen = [out], set()
    while stack:  # every named node the loss was computed from
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        if t.name and t.op is not None and t is not out:
            named.setdefault(t.name, t.retain_grad())
        stack.extend(t.inputs)
    value = float(out.data)
    out.backward()
    grads = {ref.name: float(ref.grad() or 0.0) for ref in twin.scalars()}
    nodes = {
        name: np.atleast_1d(np.asarray(t.grad, dtype=np.float64))
        for name, t in named.items()
        if t.grad is not None
    }
    return value, grads, nodes


def _labelled(
    model: Module, input_names: list[str] | None, loss_name: str, grads: dict[str, float]
) -> tuple[list[Node], list[Edge], bool]:
    """The network's nodes and edges with each weight's gradient in place of its value."""
    formula = bool(model.formula_lines)
    nodes, edges = formula_diagram(model) if formula else layer_diagram(model, input_names)
    d = f"d{loss_name}/d"
    for edge in edges:
        if edge.parameter is not None and edge.parameter in grads:
            g = grads[edge.parameter]
            edge.value = g  # colours and widths by the gradient when the edges are many
            edge.label = (
                f"{d}{edge.parameter} = {significant(g)}"
                if formula
                else (significant(g) if edge.label else "")
            )
    for node in nodes:
        texts = []
        for (text, _), name in zip(node.bias, node.bias_parameters, strict=False):
            g = grads.get(name)
            short = name if formula else "b"  # a layer's bias: db under its unit
            texts.append((f"{d}{short} = {significant(g)}" if g is not None else text, g or 0.0))
        node.bias = texts
    return nodes, edges, formula


def backward(
    model: Module,
    data: Dataset,
    loss: str | Loss,
    *,
    size: tuple[float, float] | None = None,
    dpi: float = 100,
    title: str | None = None,
) -> BackwardFigure:
    """Draw the backward pass of ``loss`` on ``data`` at the model's current values: each
    edge labelled with the gradient of its weight, each node with the loss's gradient
    with respect to it (summed over the data points), each bias with its gradient.

    A layer model with many edges shows the gradients by colour (sign) and width (size).
    """
    fig, _ = _backward(model, data, loss, size, dpi, title)
    return fig


def _backward(
    model: Module,
    data: Dataset,
    loss: str | Loss,
    size: tuple[float, float] | None,
    dpi: float,
    title: str | None,
) -> tuple[BackwardFigure, dict[str, Any]]:

    require_matplotlib()
    loss_name = loss_display(loss, None)
    value, grads, node_grads = gradients_on_data(model, data, loss)
    nodes, edges, formula = _labelled(model, list(data.input_names), loss_name, grads)
    for node in nodes:
        if formula and node.kind != "input" and node.key in node_grads:
            total = float(node_grads[node.key].sum())
            node.caption = f"d{loss_name}/d{node.key} = {significant(total)}"
    heading = (
        title
        if title is not None
        else (
            f"The backward pass: the gradient of {loss_name} = {significant(value)} "
            "on each edge, from the loss back to the parameters"
        )
    )
    trained = any(not ref.parameter.frozen for ref in model.scalars())
    frozen = any(ref.parameter.frozen for ref in model.scalars())
    mpl, artists = draw_network(
        nodes, edges, model, size, dpi, heading, trained, frozen, backward=loss_name
    )
    fig = BackwardFigure(
        kind="backward",
        figure=mpl,
        loss_name=loss_name,
        loss=value,
        gradients=grads,
        node_gradients=node_grads,
        nodes=nodes,
        edges=edges,
    )
    return fig, artists


def backward_flow(
    model: Module,
    data: Dataset,
    loss: str | Loss,
    *,
    fps: float = 1.0,
    size: tuple[float, float] | None = None,
    dpi: float = 80,
) -> BackwardFlowFigure:
    """Film the backward pass: first the loss, then the edges into the output and their
    gradients, then one column further back per frame, until the inputs' side.

    >>> from chainrule.scenario import load_scenario
    >>> s = load_scenario("main-ideas")
    >>> film = backward_flow(s.build_model(), s.data, s.loss, dpi=30)
    >>> film.frames
    [[], ['predicted'], ['y1', 'y2']]
    """
    static, artists = _backward(model, data, loss, size, dpi, None)
    columns = sorted({node.x for node in static.nodes if node.kind != "input"}, reverse=True)
    frames: list[list[str]] = [[]]
    for x in columns:
        frames.append([n.key for n in static.nodes if n.x == x and n.kind != "input"])
    shown_by_frame: list[set[str]] = []
    seen: set[str] = set()
    for keys in frames:
        seen |= set(keys)
        shown_by_frame.append(set(seen))
    edge_artists = list(zip(static.edges, artists["edges"], strict=True))
    mpl = static.figure
    ax = mpl.axes[0]
    note = ax.text(0.01, 0.01, "", transform=ax.transAxes, fontsize=9, color=style.TANGENT)

    def frame(i: int) -> tuple[Any, ...]:
        shown = shown_by_frame[i]
        for edge, (arrow, label) in edge_artists:
            on = edge.target in shown
            arrow.arrow_patch.set_alpha(1.0 if on else 0.12)
            if label is not None:
                label.set_visible(on)
        for key, texts in artists["nodes"].items():
            for text in texts:
                text.set_visible(key in shown)
        d = f"d{static.loss_name}/d"
        if i == 0:
            note.set_text(f"step 1: the loss, {d}{static.loss_name} = 1")
        else:
            note.set_text(f"step {i + 1}: the chain rule reaches {', '.join(frames[i])}")
        return ()

    film = start_film(mpl, frame, len(frames), fps)
    return BackwardFlowFigure(
        kind="backward-animation",
        figure=mpl,
        formats=BACKWARD_FORMATS,
        loss_name=static.loss_name,
        loss=static.loss,
        gradients=static.gradients,
        node_gradients=static.node_gradients,
        nodes=static.nodes,
        edges=static.edges,
        frames=frames,
        fps=fps,
        animation=film,
    )
