"""chainrule models as ONNX graphs (imported only when used: it imports onnx).

The graph is built node by node with ``onnx.helper`` from what chainrule knows of the
model: a formula's parsed lines (each line's value is named after the line, so the
graph reads in the learner's words) or a layer model's layers. Building it here, rather
than tracing the torch module, needs no torch and keeps the names exactly.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from chainrule.errors import ChainruleError
from chainrule.export import OPSET
from chainrule.export._common import check_model
from chainrule.formula import Formula
from chainrule.formula_lang import Binary, Call, Expr, Name, Negate, Number
from chainrule.io import atomic_write
from chainrule.nn import MLP, Activation, Linear, Module, Sequential

_BINARY = {"+": "Add", "-": "Sub", "*": "Mul", "/": "Div", "**": "Pow"}

#: Each function that a formula may call, and each activation, as an ONNX operator.
ONNX_OPERATORS = {
    "softplus": "Softplus",
    "relu": "Relu",
    "leaky_relu": "LeakyRelu",  # (alpha 0.01 by default, as chainrule's)
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "exp": "Exp",
    "log": "Log",
    "ln": "Log",
    "sqrt": "Sqrt",
    "abs": "Abs",
    "maximum": "Max",
    "minimum": "Min",
    "identity": "Identity",
}


class _Graph:
    """The nodes and initializers of a graph being built, with fresh value names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.count = 0

    def fresh(self, hint: str) -> str:
        self.count += 1
        return f"{hint}/{self.count}"

    def node(self, op: str, inputs: list[str], output: str, **attributes: object) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], **attributes))
        return output

    def constant(self, array: np.ndarray, name: str | None = None, dtype: type = np.float32) -> str:
        name = name or self.fresh("number")
        array = np.asarray(array, dtype=dtype)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name


def _expression(graph: _Graph, expr: Expr, out: str | None, line: str) -> str:
    """Add the nodes of ``expr``; its value is named ``out`` (or a fresh name)."""
    if isinstance(expr, Number):
        value = graph.constant(np.array(expr.value))
        return graph.node("Identity", [value], out) if out else value
    if isinstance(expr, Name):
        return graph.node("Identity", [expr.name], out) if out else expr.name
    if isinstance(expr, Negate):
        operand = _expression(graph, expr.operand, None, line)
        return graph.node("Neg", [operand], out or graph.fresh(line))
    if isinstance(expr, Binary):
        left = _expression(graph, expr.left, None, line)
        right = _expression(graph, expr.right, None, line)
        return graph.node(_BINARY[expr.op], [left, right], out or graph.fresh(line))
    assert isinstance(expr, Call)
    args = [_expression(graph, arg, None, line) for arg in expr.args]
    return graph.node(ONNX_OPERATORS[expr.function], args, out or graph.fresh(line))


def _vector(name: str) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n"])


def _formula_graph(model: Formula, columns: list[str]) -> onnx.GraphProto:
    if not model.inputs:
        raise ChainruleError("cannot export to ONNX a formula without inputs")
    graph = _Graph()
    for name, p in model.named_parameters():
        graph.constant(p.data, name)
    for a in model.assignments:
        out = a.name if a.name != model.output_name else graph.fresh(a.name)
        value = _expression(graph, a.tree, out, a.name)
    # One value per data point, as chainrule gives, also for an output without inputs.
    shape = graph.node("Shape", [model.inputs[0]], graph.fresh("n"))
    graph.node("Expand", [value, shape], model.output_name)
    return helper.make_graph(
        graph.nodes,
        "formula",
        [_vector(name) for name in columns],
        [_vector(model.output_name)],
        graph.initializers,
        doc_string="\n".join(f"{a.name} = {a.expression}" for a in model.assignments),
    )


def _layers(graph: _Graph, model: Module, x: str, prefix: str) -> str:
    """Add the nodes of a layer model applied to ``x``; return its output's name."""
    if isinstance(model, Linear):
        weight = graph.constant(model.weight.data.T, f"{prefix}weight")  # (out, in)
        inputs = [x, weight]
        if model.bias is not None:
            inputs.append(graph.constant(model.bias.data, f"{prefix}bias"))
        return graph.node("Gemm", inputs, graph.fresh(f"{prefix}out"), transB=1)
    if isinstance(model, Activation):
        return graph.node(ONNX_OPERATORS[model.name], [x], graph.fresh(model.name))
    if isinstance(model, MLP):
        for name in model.layer_names:
            z = _layers(graph, getattr(model, name), x, f"{prefix}{name}.")
            x = graph.node("Identity", [z], f"{prefix}{name}.z")
            act = model.output_activation_name if name == "output" else model.activation_name
            if act != "identity":
                x = graph.node(ONNX_OPERATORS[act], [x], f"{prefix}{name}.a")
        return x
    assert isinstance(model, Sequential)
    for i, layer in enumerate(model.layers):
        x = _layers(graph, layer, x, f"{prefix}layers.{i}.")
    return x


def _layer_graph(model: Module, columns: Sequence[str] | None) -> onnx.GraphProto:
    graph = _Graph()
    if columns:
        columns = list(columns)
        inputs = [_vector(name) for name in columns]
        axes = graph.constant(np.array([1]), "columns/axes", dtype=np.int64)
        parts = [graph.node("Unsqueeze", [name, axes], graph.fresh(name)) for name in columns]
        x = graph.node("Concat", parts, "input", axis=1)
    else:
        width = _width(model)
        inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", width])]
        x = "input"
    out = _layers(graph, model, x, "")
    graph.node("Identity", [out], "output")
    width = _width(model)
    shape = model(np.zeros((1, width))).shape[1:] if isinstance(width, int) else ("k",)
    return helper.make_graph(
        graph.nodes,
        type(model).__name__.lower(),
        inputs,
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", *shape])],
        graph.initializers,
    )


def _width(model: Module) -> int | str:
    for p in model.parameters():
        if p.ndim == 2:
            return int(p.shape[0])
    return "d"


def to_onnx(
    model: Module, path: str | os.PathLike[str], columns: Sequence[str] | None = None
) -> Path:
    """See :func:`chainrule.export.to_onnx`."""
    check_model(model)
    if isinstance(model, Formula):
        if columns is not None and sorted(columns) != sorted(model.inputs):
            raise ChainruleError(
                f"to_onnx: the formula's inputs are {', '.join(model.inputs)}, "
                f"not {', '.join(columns)}"
            )
        graph = _formula_graph(model, list(columns or model.inputs))
    else:
        width = _width(model)
        if columns is not None and isinstance(width, int) and len(columns) != width:
            raise ChainruleError(
                f"to_onnx: the model takes {width} inputs, but {len(columns)} columns "
                f"were named ({', '.join(columns)})"
            )
        graph = _layer_graph(model, columns)
    proto = helper.make_model(
        graph,
        producer_name="chainrule",
        opset_imports=[helper.make_opsetid("", OPSET)],
        doc_string=f"A chainrule {type(model).__name__}, in float32.",
    )
    proto.ir_version = min(proto.ir_version, 8)  # readable by onnxruntime 1.13 and later
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:  # pragma: no cover (a bug of ours)
        raise AssertionError(f"the ONNX graph does not check: {exc}") from exc
    return atomic_write(path, proto.SerializeToString())
