"""The computation graph the engine recorded, as Graphviz DOT (and SVG/PNG/PDF via ``dot``).

Every node shows its name (``x1``, ``y1``, ``predicted`` ...), its op, its value and, when
known, its gradient: d(root)/d(node), computed by the engine's own backward pass
(:func:`chainrule.gradients`, which leaves every ``.grad`` untouched). Parameters, inputs
and operations are styled differently, trained and frozen parameters too. The DOT text is
always available; images need Graphviz's ``dot`` program on the PATH.

>>> import chainrule as cr
>>> w = cr.tensor(2.0, requires_grad=True, name="w")
>>> fig = graph((w * cr.tensor(3.0, name="x")).sum())
>>> [(n.name, n.op, n.grad) for n in fig.nodes]
[('', 'sum', 1.0), ('', 'mul', 1.0), ('w', None, 3.0), ('x', None, None)]
>>> fig.dot.splitlines()[0]
'digraph computation {'
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.datasets import Dataset
from chainrule.errors import ChainruleError, GraphError
from chainrule.losses import Loss, loss_spec
from chainrule.nn.module import Module, Parameter
from chainrule.plots._base import Figure
from chainrule.tensor import Tensor, gradients
from chainrule.text import significant

#: Formats of a graph figure: the DOT text itself, or what ``dot`` draws from it.
GRAPH_FORMATS: tuple[str, ...] = ("dot", "svg", "png", "pdf")
#: Seconds that ``dot`` may take before it is stopped.
DOT_TIMEOUT = 30.0
#: Vectors up to this many entries are written out; longer ones by their shape.
MAX_SHOWN = 4

_STYLE = {
    "trained": 'shape=box, style="rounded,filled", fillcolor="#f9d5e5", color="#d6336c"',
    "frozen": 'shape=box, style="rounded,filled", fillcolor="#e9ecef", color="#6c757d"',
    "input": 'shape=note, style=filled, fillcolor="#e7f0fa", color="#3b6fb6"',
    "constant": 'shape=plain, fontcolor="#555555"',
    "op": 'shape=ellipse, style=filled, fillcolor="#fff8e1", color="#b08900"',
}


@dataclass
class GraphNode:
    """One node: ``kind`` is trained, frozen (parameters), input, constant or op."""

    id: str
    name: str
    op: str | None
    kind: str
    value: Any
    grad: Any
    inputs: list[str]


@dataclass(eq=False, kw_only=True)
class GraphFigure(Figure):
    """The graph as DOT text plus the nodes it shows (root first)."""

    dot: str
    nodes: list[GraphNode]

    def _write(self, path: str, fmt: str, dpi: float | None) -> None:
        if fmt == "dot":
            Path(path).write_text(self.dot, encoding="utf-8")
            return
        Path(path).write_bytes(render_dot(self.dot, fmt, dpi))

    def _repr_png_(self) -> bytes | None:
        return None  # notebooks get the SVG (or nothing without Graphviz)

    def _repr_svg_(self) -> str | None:
        if not dot_available():
            return None
        return render_dot(self.dot, "svg").decode("utf-8")


def dot_available() -> bool:
    """Whether Graphviz's ``dot`` program is on the PATH."""
    return shutil.which("dot") is not None


def render_dot(dot: str, fmt: str, dpi: float | None = None) -> bytes:
    """Run Graphviz's ``dot`` on DOT text and return the drawing (svg, png or pdf)."""
    program = shutil.which("dot")
    if program is None:
        raise ChainruleError(
            f"drawing the graph as .{fmt} needs Graphviz's 'dot' program on the PATH "
            "(e.g. apt-get install graphviz, or brew install graphviz); "
            "saving it as .dot needs nothing"
        )
    command = [program, f"-T{fmt}"] + ([f"-Gdpi={dpi:g}"] if dpi and fmt == "png" else [])
    try:
        done = subprocess.run(
            command,
            input=dot.encode("utf-8"),
            capture_output=True,
            timeout=DOT_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ChainruleError(
            f"Graphviz's dot took more than {DOT_TIMEOUT:g} s; save the graph as .dot instead"
        ) from None
    except OSError as exc:
        raise ChainruleError(f"cannot run Graphviz's dot: {exc}") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ChainruleError(f"Graphviz's dot failed: {message[0] if message else 'no message'}")
    return done.stdout


def _walk(root: Tensor) -> list[Tensor]:
    """Every tensor that ``root`` was computed from, root first (iterative, no recursion)."""
    order, seen, stack = [], {id(root)}, [root]
    while stack:
        node = stack.pop()
        order.append(node)
        for parent in reversed(node.inputs):
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append(parent)
    return order


def _engine_gradients(root: Tensor, nodes: list[Tensor]) -> dict[int, Any]:
    """d root / d node for every node that needs one, by the engine's backward pass."""
    if root.data.size != 1 or not root.requires_grad:
        return {}
    wanted = [t for t in nodes if t.requires_grad]
    try:
        found = gradients(root, wanted, retain_graph=True)
    except GraphError:
        return {}  # the graph was freed by a backward(): fall back to the stored .grad
    return {id(t): g for t, g in zip(wanted, found, strict=True)}


def _text(value: Any) -> str:
    array = np.asarray(value.data if isinstance(value, Tensor) else value, dtype=np.float64)
    if array.size == 1:
        return significant(float(array.reshape(())), 4)
    if array.ndim == 1 and array.size <= MAX_SHOWN:
        return "[" + ", ".join(significant(v, 3) for v in array) + "]"
    return f"array {tuple(array.shape)}"


def _kind(t: Tensor, frozen: set[str] | None) -> str:
    """op; trained or frozen (a parameter, or a leaf that requires grad); input; constant."""
    if t.op is not None:
        return "op"
    if isinstance(t, Parameter) or t.requires_grad:
        is_frozen = not t.requires_grad if frozen is None else (t.name in frozen)
        return "frozen" if is_frozen else "trained"
    return "input" if t.name else "constant"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def graph(
    tensor: Tensor,
    frozen: Iterable[str] | None = None,
    title: str | None = None,
) -> GraphFigure:
    """The computation graph that produced ``tensor``, as DOT text (and images via ``dot``).

    Gradients are d(tensor)/d(node), found by the engine's backward pass when ``tensor`` is
    one number and its graph is still there (call ``backward(retain_graph=True)`` if you
    backpropagated through it yourself); otherwise a node's own ``.grad`` is shown.
    ``frozen`` names parameters to style as frozen (default: the parameters' own state).
    """
    if not isinstance(tensor, Tensor):
        raise ChainruleError(f"graph: needs a Tensor, got {type(tensor).__name__}")
    nodes = _walk(tensor)
    grads = _engine_gradients(tensor, nodes)
    frozen_names = None if frozen is None else set(frozen)
    ids = {id(t): f"n{i}" for i, t in enumerate(nodes)}
    records: list[GraphNode] = []
    lines = [
        "digraph computation {",
        '  rankdir=LR; bgcolor="white"; node [fontname="Helvetica", fontsize=11];',
        '  edge [color="#555555", arrowsize=0.7];',
    ]
    if title:
        lines.append(f'  label="{_escape(title)}"; labelloc=t; fontname="Helvetica";')
    for t in nodes:
        kind = _kind(t, frozen_names)
        grad = grads.get(id(t), t.grad)
        grad_value = None
        if grad is not None:
            g = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=np.float64)
            grad_value = float(g.reshape(())) if g.size == 1 else g
        value = float(t.data.reshape(())) if t.data.size == 1 else t.data
        records.append(
            GraphNode(
                ids[id(t)],
                t.name or "",
                t.op.name if t.op else None,
                kind,
                value,
                grad_value,
                [ids[id(p)] for p in t.inputs],
            )
        )
        label = [t.name] if t.name else []
        if t.op is not None:
            label.append(t.op.name)
        elif kind in ("trained", "frozen"):
            label.append(f"parameter ({kind})")
        label.append(f"value {_text(t.data)}")
        if grad is not None:
            label.append(f"grad {_text(grad)}")
        extra = ", peripheries=2" if t is tensor else ""
        text = "\\n".join(_escape(part) for part in label)
        lines.append(f'  {ids[id(t)]} [label="{text}", {_STYLE[kind]}{extra}];')
    for t in nodes:
        for parent in t.inputs:
            lines.append(f"  {ids[id(parent)]} -> {ids[id(t)]};")
    lines.append("}")
    return GraphFigure(
        kind="graph",
        figure=None,
        formats=GRAPH_FORMATS,
        dot="\n".join(lines) + "\n",
        nodes=records,
    )


def model_graph(model: Module, data: Dataset, loss: str | Loss = "ssr") -> GraphFigure:
    """The graph of one forward pass of ``model`` on ``data`` and its loss, every parameter
    recorded (frozen ones too, styled as frozen), with each node's gradient of the loss.

    >>> from chainrule.scenario import load_scenario
    >>> s = load_scenario("main-ideas")
    >>> fig = model_graph(s.build_model(), s.data, s.loss)
    >>> [n.name for n in fig.nodes if n.kind == "trained"]
    ['b3']
    """

    frozen = [name for name, p in model.named_parameters() if p.frozen]
    twin = model.at()
    twin.unfreeze()
    loss_fn = loss_spec(loss).function
    out = twin(model.feed(data))
    total = loss_fn(out, np.asarray(data.target))
    _name_the_target(total, out, data)
    return graph(total, frozen=frozen)


def _name_the_target(total: Tensor, out: Any, data: Dataset) -> None:
    """Call the loss's target leaf by the data's own name (``efficacy``, ``label``).

    The loss functions name the leaf that holds the target ``observed``, whatever the
    data calls it; this graph is made for one picture, so its leaf can carry the name
    the learner wrote. A one-hot matrix of class labels is ``label (one-hot)``.
    """
    model_part = {id(t) for t in _walk(out)} if isinstance(out, Tensor) else set()
    target = np.asarray(data.target)
    for t in _walk(total):
        if t.op is None and t.name and not t.requires_grad and id(t) not in model_part:
            one_hot = t.data.ndim == 2 and t.data.shape[1] > 1 and target.ndim == 1
            t.name = f"{data.target_name} (one-hot)" if one_hot else data.target_name
