"""The network diagram: inputs, named nodes and output, with every parameter's value.

For a formula model the diagram is read from the graph that the engine records for one
forward pass (:meth:`Formula.trace`), not from the text: an edge ``dosage -> x1`` labelled
``w1`` exists because the engine multiplied ``w1`` by ``dosage`` and added the product
into ``x1``. A node that only feeds an activation is drawn with it as one unit, as
StatQuest draws ``x1 -> softplus -> y1``. Layer models (MLP, Sequential of Linear layers)
are drawn as units in columns, with the weights on the edges when there are few.

Trained parameters and frozen ones are told apart by colour (and a legend).

>>> from chainrule.scenario import load_scenario
>>> fig = network(load_scenario("main-ideas").build_model())
>>> [(e.source, e.target, e.parameter) for e in fig.edges][:2]
[('dosage', 'y1', 'w1'), ('dosage', 'y2', 'w2')]
>>> fig.trained
['b3']
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.errors import ChainruleError
from chainrule.nn import MLP, Activation, Linear, Sequential
from chainrule.nn.module import Module
from chainrule.plots import _style as style
from chainrule.plots._base import Figure, matplotlib_figure, require_matplotlib
from chainrule.plots._terms import Term, additive_terms, describe, recorder, wrapped_text
from chainrule.tensor import Tensor
from chainrule.text import parameter_value

#: Edges of a layer model get their weight written on them up to this many edges.
MAX_LABELLED_EDGES = 16
#: A layer model's column shows at most this many units.
MAX_UNITS = 12


@dataclass
class Node:
    """A box or circle of the diagram at ``(x, y)``: ``kind`` is input, hidden or output."""

    key: str
    title: str
    caption: str
    kind: str
    x: float = 0.0
    y: float = 0.0
    bias: list[tuple[str, float]] = field(default_factory=list)  # (text, value)
    bias_parameters: list[str] = field(default_factory=list)
    bias_trained: list[bool] = field(default_factory=list)  # one per entry of ``bias``


@dataclass
class Edge:
    """An arrow from ``source`` to ``target`` (node keys), weighted by ``parameter``.

    ``label`` is the text written on it; ``value`` the parameter's value (None when the
    edge carries no single parameter).
    """

    source: str
    target: str
    parameter: str | None
    value: float | None
    label: str
    trained: bool


@dataclass(eq=False, kw_only=True)
class NetworkFigure(Figure):
    """The diagram and what it shows: nodes, edges, biases and the parameters' values."""

    nodes: list[Node]
    edges: list[Edge]
    values: dict[str, float]
    trained: list[str]
    frozen: list[str]


def network(
    model: Module,
    input_names: list[str] | None = None,
    *,
    size: tuple[float, float] | None = None,
    dpi: float = 100,
    title: str | None = None,
) -> NetworkFigure:
    """Draw ``model`` as a network with its parameters' current values.

    ``input_names`` names a layer model's inputs (e.g. a data set's ``input_names``).
    """
    if model.formula_lines:
        nodes, edges = formula_diagram(model)
    else:
        nodes, edges = layer_diagram(model, input_names)
    trained_set = {name for name, p in _scalar_frozen(model) if not p}
    values = {ref.name: ref.value for ref in model.scalars()}
    trained = [name for name in values if name in trained_set]
    frozen = [name for name in values if name not in trained_set]
    mpl, _ = draw_network(nodes, edges, model, size, dpi, title, bool(trained), bool(frozen))
    return NetworkFigure(
        kind="network",
        figure=mpl,
        nodes=nodes,
        edges=edges,
        values=values,
        trained=trained,
        frozen=frozen,
    )


def _scalar_frozen(model: Module) -> list[tuple[str, bool]]:
    return [(ref.name, ref.parameter.frozen) for ref in model.scalars()]


def _is_trained(model: Module, name: str) -> bool:
    return not model.scalar(name).parameter.frozen


# ---------------------------------------------------------------------------------------
# Formula models: read the recorded graph
# ---------------------------------------------------------------------------------------


def formula_diagram(model: Module) -> tuple[list[Node], list[Edge]]:
    # Every operation recorded, the inputs' own too: ``w * (dosage + 1)`` is an edge from
    # dosage, not a number.
    named = recorder(model)({})
    name_of = {id(t): name for name, t in named.items()}
    parameters = set(model.parameter_names)
    assigned = [a.name for a in model.assignments]
    uses = Counter(name for a in model.assignments for name in a.uses)

    # ``x1 = ...`` then ``y1 = softplus(x1)``, x1 used nowhere else: one unit, as
    # StatQuest draws it. ``merged[x1] = y1``.
    merged: dict[str, str] = {}
    for name in assigned:
        inner = _activation_input(named[name])
        inner_name = name_of.get(id(inner)) if inner is not None else None
        if inner_name in assigned and uses[inner_name] == 1:
            merged[inner_name] = name

    nodes: dict[str, Node] = {n: Node(n, n, "", "input") for n in model.inputs}
    key_of = {n: n for n in model.inputs}  # a formula name -> the node that shows it
    depth = {n: 0 for n in model.inputs}
    edges: list[Edge] = []
    for name in assigned:
        if name in merged:
            continue  # drawn with the activation that reads it
        tensor = named[name]
        inner = _activation_input(tensor)
        names = [name]
        if inner is None:
            activation, terms = None, additive_terms(tensor, open_named=False)
        else:
            assert tensor.op is not None
            activation, inner_name = tensor.op.name, name_of.get(id(inner))
            if inner_name is not None and merged.get(inner_name) == name:
                names = [inner_name, name]
                terms = additive_terms(inner, open_named=False)
            elif inner_name is not None:
                terms = [Term(inner_name, 1.0, inner)]
            else:
                terms = additive_terms(inner, open_named=False)
        kind = "output" if name == model.output_name else "hidden"
        title = activation or ("+" if len(terms) > 1 else name)
        node = Node(name, title, " → ".join(names), kind)
        sources: list[str] = []
        for term in terms:
            sources += _read_term(term, node, name_of, parameters, key_of, model, edges)
        for n in names:
            key_of[n] = name
        depth[name] = 1 + max((depth[s] for s in sources), default=0)
        nodes[name] = node
    _place(list(nodes.values()), depth)
    return list(nodes.values()), edges


def _activation_input(tensor: Tensor) -> Tensor | None:
    """The input of an elementwise one-input op such as softplus (None for anything else)."""
    op = tensor.op
    if op is not None and op.arity == 1 and op.elementwise and op.name != "neg":
        return tensor.inputs[0]
    return None


def _read_term(
    term: Term,
    node: Node,
    name_of: dict[int, str],
    parameters: set[str],
    key_of: dict[str, str],
    model: Module,
    edges: list[Edge],
) -> list[str]:
    """Turn one additive term of a node into an edge or a bias; return the source nodes."""
    tensor, minus = term.tensor, term.sign < 0
    name = name_of.get(id(tensor))
    if name == node.key:  # ``y = x1``: the node's own tensor; look inside it
        name = None
    if name in parameters:
        value = model.scalar(name).value
        node.bias.append((f"{'−' if minus else '+'} {name} = {parameter_value(value)}", value))
        node.bias_parameters.append(name)
        node.bias_trained.append(_is_trained(model, name))
        return []
    if name is not None:
        edges.append(Edge(key_of[name], node.key, None, None, "−" if minus else "", False))
        return [key_of[name]]
    if tensor.op is not None and tensor.op.name == "mul" and len(tensor.inputs) == 2:
        a, b = (name_of.get(id(t)) for t in tensor.inputs)
        weight, source = (a, b) if a in parameters else (b, a)
        if weight in parameters and source is not None and source not in parameters:
            value = model.scalar(weight).value
            text = f"{weight} = {parameter_value(value)}"
            edges.append(
                Edge(
                    key_of[source],
                    node.key,
                    weight,
                    value,
                    f"−({text})" if minus else text,
                    _is_trained(model, weight),
                )
            )
            return [key_of[source]]
    # Anything else: an edge from every named node inside, labelled with the term.
    used = _named_inside(tensor, name_of)
    sources = [key_of[n] for n in used if n not in parameters]
    label = term.label
    if not sources:  # a number, or a product of parameters and numbers (``2 * b``)
        value = float(np.asarray(tensor.data).ravel()[0])
        text = f"{'−' if minus else '+'} {wrapped_text(tensor, describe(tensor))}"
        if used:
            text += f" = {parameter_value(value)}"
        node.bias.append((text, value))
        node.bias_parameters += [n for n in used if n in parameters]
        node.bias_trained.append(any(_is_trained(model, n) for n in used if n in parameters))
        return []
    inside = [n for n in used if n in parameters]
    trained = any(_is_trained(model, n) for n in inside)
    if inside:  # the values too: ``w4 × (y2 + 1)`` then ``w4 = -2.30`` below it
        label += "\n" + ", ".join(f"{n} = {parameter_value(model.scalar(n).value)}" for n in inside)
    for source in dict.fromkeys(sources):
        edges.append(Edge(source, node.key, None, None, label, trained))
    return sources


def _named_inside(tensor: Tensor, name_of: dict[int, str]) -> list[str]:
    """Named nodes reached from ``tensor`` without going through another named node."""
    found: list[str] = []
    stack, seen = list(tensor.inputs), set()
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        if id(t) in name_of:
            found.append(name_of[id(t)])
        else:
            stack.extend(t.inputs)
    return list(dict.fromkeys(found))


def _place(nodes: list[Node], depth: dict[str, int]) -> None:
    """Columns by depth; within a column the nodes are spread evenly around 0."""
    columns: dict[int, list[Node]] = {}
    for node in nodes:
        columns.setdefault(depth[node.key], []).append(node)
    for d, members in columns.items():
        for i, node in enumerate(members):
            node.x, node.y = 3.2 * d, 1.7 * ((len(members) - 1) / 2 - i)


# ---------------------------------------------------------------------------------------
# Layer models: units in columns
# ---------------------------------------------------------------------------------------


def layer_stack(model: Module) -> list[tuple[str, Any, str]]:
    """(dotted name, Linear layer, activation after it) for a layer model."""

    if isinstance(model, MLP):
        return [
            (
                name,
                getattr(model, name),
                model.output_activation_name if name == "output" else model.activation_name,
            )
            for name in model.layer_names
        ]
    if isinstance(model, Linear):
        return [("", model, "identity")]
    if isinstance(model, Sequential):
        found: list[tuple[str, Any, str]] = []
        for i, layer in enumerate(model.layers):
            if isinstance(layer, Linear):
                found.append((f"layers.{i}", layer, "identity"))
            elif isinstance(layer, Activation) and found:
                found[-1] = (found[-1][0], found[-1][1], layer.name)
        if found:
            return found
    raise ChainruleError(
        "network draws formula models and layer models (MLP, Linear, Sequential of Linear "
        f"layers); this model is a {type(model).__name__}"
    )


def _shown(count: int) -> list[int]:
    """The units of a column that are drawn (all, or the first and last few)."""
    if count <= MAX_UNITS:
        return list(range(count))
    half = (MAX_UNITS - 1) // 2
    return [*range(half), *range(count - half, count)]


def layer_diagram(model: Module, input_names: list[str] | None) -> tuple[list[Node], list[Edge]]:
    layers = layer_stack(model)
    sizes = [layers[0][1].in_features] + [layer.out_features for _, layer, _ in layers]
    names = list(input_names) if input_names else [f"x{i + 1}" for i in range(sizes[0])]
    if len(names) != sizes[0]:
        raise ChainruleError(
            f"network: {len(names)} input names for a model with {sizes[0]} inputs"
        )
    nodes: list[Node] = []
    columns: list[list[str]] = []
    for c, count in enumerate(sizes):
        keys = []
        shown = _shown(count)
        for row, unit in enumerate(shown):
            if c == 0:
                key, title, kind = names[unit], names[unit], "input"
            else:
                prefix = layers[c - 1][0]
                key = f"{prefix}[{unit}]" if prefix else f"[{unit}]"
                title = "" if layers[c - 1][2] == "identity" else layers[c - 1][2]
                kind = "output" if c == len(sizes) - 1 else "hidden"
            gap = 0.6 if count > MAX_UNITS and row >= len(shown) // 2 else 0.0
            y = 1.3 * ((len(shown) - 1) / 2 - row) - gap
            nodes.append(Node(key, title, "", kind, 3.2 * c, y))
            keys.append((unit, key))
        columns.append(keys)  # type: ignore[arg-type]
    edge_count = sum(len(a) * len(b) for a, b in zip(columns, columns[1:], strict=False))
    labelled = edge_count <= MAX_LABELLED_EDGES
    edges: list[Edge] = []
    by_key = {n.key: n for n in nodes}
    for c, (prefix, layer, _) in enumerate(layers):
        wname = f"{prefix}.weight" if prefix else "weight"
        bname = f"{prefix}.bias" if prefix else "bias"
        trained_w = not layer.weight.frozen
        for i, source in columns[c]:  # type: ignore[misc]
            for j, target in columns[c + 1]:  # type: ignore[misc]
                value = float(layer.weight.data[i, j])
                label = parameter_value(value) if labelled else ""
                edges.append(Edge(source, target, f"{wname}[{i},{j}]", value, label, trained_w))
        if layer.bias is not None:
            for j, target in columns[c + 1]:  # type: ignore[misc]
                value = float(layer.bias.data[j])
                if labelled:
                    by_key[target].bias.append((f"b = {parameter_value(value)}", value))
                    by_key[target].bias_trained.append(not layer.bias.frozen)
                by_key[target].bias_parameters.append(f"{bname}[{j}]")
    return nodes, edges


# ---------------------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------------------

_FILL = {"input": "#eeeeee", "hidden": "#dbe9f6", "output": "#d9f0d3"}


def draw_network(
    nodes: list[Node],
    edges: list[Edge],
    model: Module,
    size: tuple[float, float] | None,
    dpi: float,
    title: str | None,
    any_trained: bool,
    any_frozen: bool,
    backward: str | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Draw the diagram; return the matplotlib figure and its artists by part:
    ``edges`` (arrow, label or None) per edge, ``nodes`` the texts of each node key.

    With ``backward`` (the loss's name) the arrows point from the output back to the
    inputs, and a box for the loss stands after the output: the backward pass."""
    require_matplotlib()
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle, FancyBboxPatch

    layer_model = not (model.formula_lines)
    xs = np.array([n.x for n in nodes])
    ys = np.array([n.y for n in nodes])
    output = model.output_name or "output"
    right = xs.max() + 2.2
    x_low, x_high = xs.min() - 1.0, right
    y_low, y_high = ys.min() - 1.25, ys.max() + 0.95
    if size is None:
        scale = 1.05
        size = (
            min((x_high - x_low) * scale + 0.3, 12.0),
            min(max((y_high - y_low) * scale + 0.4, 2.6), 9.0),
        )
    mpl = matplotlib_figure(*size, dpi=dpi)
    ax = mpl.add_subplot()
    ax.set_xlim(x_low, x_high)
    ax.set_ylim(y_low, y_high)
    ax.set_aspect("equal")
    ax.axis("off")
    by_key = {n.key: n for n in nodes}
    half_w, half_h, radius = 0.62, 0.32, 0.3
    artists: dict[str, Any] = {"edges": [], "nodes": {}}
    along: list[tuple[Any, tuple[float, float], tuple[float, float]]] = []

    def side(node: Node, right_side: bool) -> tuple[float, float]:
        reach = radius if layer_model else half_w
        return (node.x + reach if right_side else node.x - reach, node.y)

    many = len(edges) > MAX_LABELLED_EDGES
    # A layer model's labels sit at a different point along the edges into each unit of a
    # column, so the labels of the edges that cross near the sources do not pile up.
    stagger: dict[str, float] = {}
    if layer_model:
        columns: dict[float, list[Node]] = {}
        for node in nodes:
            columns.setdefault(node.x, []).append(node)
        for members in columns.values():
            members.sort(key=lambda n: -n.y)
            for j, node in enumerate(members):
                stagger[node.key] = (
                    0.5 if len(members) == 1 else 0.25 + 0.45 * j / (len(members) - 1)
                )
    peak = max((abs(e.value) for e in edges if e.value is not None), default=1.0) or 1.0
    for edge in edges:
        a, b = by_key[edge.source], by_key[edge.target]
        start, end = side(a, True), side(b, False)
        if many:
            colour = (
                (style.BLUE if (edge.value or 0) >= 0 else style.ORANGE)
                if edge.trained
                else style.LIGHT_GREY
            )
            width = 0.3 + 2.2 * abs(edge.value or 0) / peak
        else:
            colour = style.TRAINED if edge.trained else style.FROZEN
            width = 1.3
        arrow = ax.annotate(
            "",
            xy=start if backward else end,
            xytext=end if backward else start,
            zorder=1,
            arrowprops={
                "arrowstyle": "-|>",
                "color": colour,
                "lw": width,
                "shrinkA": 0,
                "shrinkB": 0,
                "mutation_scale": 10,
            },
        )
        label = None
        if edge.label:
            t = stagger.get(edge.target, 0.5)
            lx, ly = start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1])
            label = ax.text(
                lx,
                ly,
                edge.label,
                ha="center",
                va="center",
                fontsize=8.5,
                color=style.TRAINED if edge.trained else style.FROZEN,
                zorder=4,
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none"},
            )
        artists["edges"].append((arrow, label))
        if label is not None:
            along.append((label, start, end))
    for node in nodes:
        texts = artists["nodes"].setdefault(node.key, [])
        fill = _FILL[node.kind]
        if layer_model:
            ax.add_patch(
                Circle((node.x, node.y), radius, fc=fill, ec=style.BLACK, lw=1.1, zorder=2)
            )
            text = node.title if node.kind != "input" else ""
            if node.kind == "input":
                ax.text(
                    node.x - radius - 0.1, node.y, node.title, ha="right", va="center", fontsize=9
                )
            ax.text(node.x, node.y, text, ha="center", va="center", fontsize=7, zorder=3)
        else:
            ax.add_patch(
                FancyBboxPatch(
                    (node.x - half_w, node.y - half_h),
                    2 * half_w,
                    2 * half_h,
                    boxstyle="round,pad=0.02,rounding_size=0.15",
                    fc=fill,
                    ec=style.BLACK,
                    lw=1.1,
                    zorder=2,
                )
            )
            ax.text(
                node.x,
                node.y,
                node.title,
                ha="center",
                va="center",
                fontsize=16 if node.title == "+" else 10,
                zorder=3,
            )
            shown_elsewhere = node.kind == "output" and node.caption == output
            if node.caption and node.caption != node.title and not shown_elsewhere:
                caption = ax.text(
                    node.x,
                    node.y + half_h + 0.12,
                    node.caption,
                    ha="center",
                    va="bottom",
                    fontsize=8.5,
                    color=style.TANGENT if backward else style.GREY,
                )
                texts.append(caption)
        for k, ((text, _), trained) in enumerate(zip(node.bias, node.bias_trained, strict=True)):
            offset = (radius if layer_model else half_h) + 0.1 + 0.3 * k
            texts.append(
                ax.text(
                    node.x,
                    node.y - offset,
                    text,
                    ha="center",
                    va="top",
                    fontsize=8.5,
                    color=style.TRAINED if trained else style.FROZEN,
                    zorder=4,
                )
            )
    outputs = [n for n in nodes if n.kind == "output"]
    for j, out_node in enumerate(outputs):
        start = side(out_node, True)
        ax.annotate(
            "",
            xy=start if backward else (start[0] + 0.7, start[1]),
            xytext=(start[0] + 0.7, start[1]) if backward else start,
            arrowprops={"arrowstyle": "-|>", "color": style.BLACK, "lw": 1.2},
        )
        name = output if len(outputs) == 1 else f"{output}[{j}]"
        artists["output"] = ax.text(
            start[0] + 0.8,
            start[1],
            backward if backward else name,
            ha="left",
            va="center",
            fontsize=10,
            bbox={"boxstyle": "round", "fc": "#fde0ef", "ec": style.BLACK} if backward else None,
        )
    handles = []
    if any_trained and many:
        handles.append(Line2D([], [], color=style.BLUE, lw=2, label="trained, weight > 0"))
        handles.append(Line2D([], [], color=style.ORANGE, lw=2, label="trained, weight < 0"))
    elif any_trained:
        handles.append(Line2D([], [], color=style.TRAINED, lw=2, label="trained"))
    if any_frozen:
        handles.append(
            Line2D(
                [], [], color=style.FROZEN if not many else style.LIGHT_GREY, lw=2, label="frozen"
            )
        )
    if handles and not backward:
        ax.legend(handles=handles, loc="lower right", fontsize="small", frameon=False)
    if title:
        style.axes_title(ax, title, 11.0)
    if layer_model and along:
        _spread_labels(mpl, along)
    return mpl, artists


def _spread_labels(
    mpl: Any, along: list[tuple[Any, tuple[float, float], tuple[float, float]]]
) -> None:
    """Slide each edge label along its edge until it covers no label placed before it
    (edges that cross near a column put their labels on top of each other)."""
    style.settle(mpl)
    renderer = mpl.canvas.get_renderer()
    placed: list[Any] = []
    for label, start, end in along:
        first = label.get_position()
        for t in (None, 0.5, 0.35, 0.65, 0.2, 0.8, 0.27, 0.73, 0.42, 0.58):
            if t is not None:
                label.set_position(
                    (start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1]))
                )
            box = label.get_window_extent(renderer).expanded(1.08, 1.15)
            if not any(box.overlaps(other) for other in placed):
                break
        else:
            label.set_position(first)
        placed.append(label.get_window_extent(renderer))
