"""Every entry of the op table, checked two ways.

1. Its gradient against central finite differences in float64 (``chainrule.check_grads``)
   on hypothesis-drawn shapes, broadcasting included.
2. Its values, gradients and Hessian-vector products against PyTorch, float64, rtol 1e-10.

Both tests iterate over ``chainrule.ops.OPS`` itself, so an op added to the table without a
case here (and a PyTorch counterpart in ``TORCH``) makes them fail. Named cases then pin the
variants that random draws might miss: repeated fancy indices, batched matmul, and so on.

Values are kept away from kinks and ties (relu, abs, clip, max, min, maximum, minimum) and
positive where the domain needs it (log, sqrt, the base of pow): finite differences must not
straddle a point where the derivative jumps.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule as cr
from chainrule import ops
from chainrule.explain import symbolic
from chainrule.ops import OPS, Op
from chainrule.tensor import FUNCTIONS as TABLE_FUNCTIONS
from chainrule.tensor import apply

EXAMPLES = settings(max_examples=25, deadline=None)

# ---------------------------------------------------------------------------------------
# Cases: one strategy per op, drawing its inputs and parameters
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class Case:
    """An op's float64 inputs and its parameters: ``apply(OPS[name], *args, **attrs)``."""

    args: list[np.ndarray]
    attrs: dict[str, Any]

    def __repr__(self) -> str:
        shapes = ", ".join(str(a.shape) for a in self.args)
        return f"Case(shapes=[{shapes}], attrs={self.attrs!r}, args={self.args!r})"


#: op name -> function(draw) -> Case
CASES: dict[str, Callable[[Any], Case]] = {}


def case(*names: str) -> Callable:
    """Register a case builder ``builder(draw, name)`` for the ops ``names``."""

    def register(builder: Callable) -> Callable:
        for name in names:
            CASES[name] = st.composite(lambda draw, name=name: builder(draw, name))
        return builder

    return register


SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
TWO_SHAPES = hnp.mutually_broadcastable_shapes(
    num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=4
)


def floats(draw, shape, low=-2.0, high=2.0) -> np.ndarray:
    elements = st.floats(low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False)
    return draw(hnp.arrays(np.float64, shape, elements=elements))


def away_from(x: np.ndarray, kinks: list[float], gap: float = 0.05) -> np.ndarray:
    """Move the entries closer than ``gap`` to a kink out to ``gap`` (kinks >= 2 gap apart)."""
    x = np.array(x, dtype=np.float64)
    for kink in kinks:
        d = x - kink
        close = np.abs(d) < gap
        x[close] = kink + np.where(d[close] >= 0, gap, -gap)
    return x


def distinct(draw, shape) -> np.ndarray:
    """Values at least 0.08 apart: no ties for max and min."""
    n = math.prod(shape)
    ranks = np.array(draw(st.permutations(range(n))), dtype=np.float64).reshape(shape)
    return 0.1 * ranks - 0.05 * n + floats(draw, shape, -0.01, 0.01)


def on_grid(draw, shape, offset: float) -> np.ndarray:
    """Multiples of 0.2 plus ``offset``: two grids with different offsets never meet."""
    ints = draw(hnp.arrays(np.int64, shape, elements=st.integers(-10, 10)))
    return 0.2 * ints + offset


def axis_choice(draw, ndim: int) -> Any:
    """None, one axis or a tuple of axes, sometimes written as negative numbers."""
    if ndim == 0:
        return None
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        return None
    axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    axes = [a - ndim if draw(st.booleans()) else a for a in axes]
    return axes[0] if kind == "int" else tuple(axes)


@case("add", "sub", "mul", "div", "pow", "maximum", "minimum")
def binary(draw, name, shapes=None):
    shape_a, shape_b = shapes or draw(TWO_SHAPES).input_shapes
    if name in ("maximum", "minimum"):  # two grids 0.1 apart: never a tie
        a, b = on_grid(draw, shape_a, 0.0), on_grid(draw, shape_b, 0.1)
    else:
        a, b = floats(draw, shape_a), floats(draw, shape_b)
    if name == "div":
        b = np.where(b < 0, b - 0.5, b + 0.5)
    if name == "pow":
        # A positive base; an exponent away from 0, where PyTorch masks the base's gradient
        # and so loses its derivative with respect to the exponent.
        a, b = 0.5 + np.abs(a), away_from(b, [0.0])
    return Case([a, b], {})


@case("neg", "abs", "exp", "log", "sqrt", "softplus", "relu", "leaky_relu", "sigmoid", "tanh")
def unary(draw, name):
    x = floats(draw, draw(SHAPES))
    if name in ("abs", "relu", "leaky_relu"):
        x = away_from(x, [0.0])
    if name in ("log", "sqrt"):
        x = 0.3 + np.abs(x)
    return Case([x], {})


@case("clip")
def clip(draw, name):
    lo, hi = draw(st.sampled_from([(-0.5, 0.5), (None, 0.3), (-0.3, None), (0.0, 1.5)]))
    x = away_from(floats(draw, draw(SHAPES)), [v for v in (lo, hi) if v is not None])
    return Case([x], {"lo": lo, "hi": hi})


@case("softmax", "log_softmax")
def along_axis(draw, name):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    return Case([floats(draw, shape)], {"axis": axis})


@case("sum", "mean", "max", "min")
def reduction(draw, name):
    shape = draw(SHAPES)
    x = distinct(draw, shape) if name in ("max", "min") else floats(draw, shape)
    axis, keepdims = axis_choice(draw, len(shape)), draw(st.booleans())
    return Case([x], {"axis": axis, "keepdims": keepdims})


@case("reshape")
def reshape(draw, name):
    shape = draw(SHAPES)
    size = math.prod(shape)
    target = draw(
        st.sampled_from([(-1,), (size,), tuple(reversed(shape)), shape + (1,), (1,) + shape])
    )
    return Case([floats(draw, shape)], {"shape": target})


@case("transpose")
def transpose(draw, name):
    shape = draw(SHAPES)
    ndim = len(shape)
    axes = None
    if draw(st.booleans()):
        axes = tuple(
            a - ndim if draw(st.booleans()) else a for a in draw(st.permutations(range(ndim)))
        )
    return Case([floats(draw, shape)], {"axes": axes})


@case("swapaxes")
def swapaxes(draw, name):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4))
    axis = st.integers(-len(shape), len(shape) - 1)
    return Case([floats(draw, shape)], {"axis1": draw(axis), "axis2": draw(axis)})


@case("broadcast_to")
def broadcast_to(draw, name):
    target = draw(SHAPES)
    kept = target[draw(st.integers(0, len(target))) :]
    shape = tuple(1 if draw(st.booleans()) else n for n in kept)
    return Case([floats(draw, shape)], {"shape": target})


def index_for(draw, shape: tuple[int, ...]) -> Any:
    """A numpy index into ``shape``: ints, slices, None, Ellipsis, integer arrays (which
    may repeat an entry) and boolean masks, alone or in tuples."""
    n = shape[0]
    position = st.integers(-n, n - 1)
    bound = st.one_of(st.none(), st.integers(-n - 1, n + 1))
    kinds = ["int", "slice", "slices", "ellipsis", "newaxis", "array", "mask"]
    if len(shape) >= 2:
        kinds += ["slice_array", "two_arrays"]
    kind = draw(st.sampled_from(kinds))
    if kind == "int":
        return draw(position)
    if kind == "slice":
        return slice(draw(bound), draw(bound), draw(st.sampled_from([None, 1, 2, 3])))
    if kind == "slices":
        return tuple(
            slice(draw(st.integers(0, m - 1)), None, draw(st.integers(1, 2))) for m in shape
        )
    if kind == "ellipsis":
        return (Ellipsis, draw(st.integers(-shape[-1], shape[-1] - 1)))
    if kind == "newaxis":
        return (None, slice(draw(bound), None))
    if kind == "array":
        return np.array(draw(st.lists(position, min_size=1, max_size=6)))
    if kind == "mask":
        return draw(hnp.arrays(np.bool_, shape))
    m = shape[1]
    column = np.array(draw(st.lists(st.integers(-m, m - 1), min_size=1, max_size=4)))
    if kind == "slice_array":
        return (slice(None), column)
    rows = np.array(draw(st.lists(position, min_size=1, max_size=3))).reshape(-1, 1)
    return (rows, column)  # broadcast to (rows, columns): repeats are likely


@case("getitem")
def getitem(draw, name):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    index = index_for(draw, shape)
    return Case([floats(draw, shape)], {"index": index})


@case("scatter")
def scatter(draw, name):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    index = index_for(draw, shape)
    g = floats(draw, np.empty(shape)[index].shape)
    return Case([g], {"index": index, "shape": shape})


@case("concatenate")
def concatenate(draw, name):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    shapes = [shape[: axis % len(shape)] + (n,) + shape[axis % len(shape) + 1 :] for n in sizes]
    args = [floats(draw, s) for s in shapes]
    return Case(args, {"axis": axis})


@case("stack")
def stack(draw, name):
    shape = draw(SHAPES)
    axis = draw(st.integers(-len(shape) - 1, len(shape)))
    args = [floats(draw, shape) for _ in range(draw(st.integers(1, 3)))]
    return Case(args, {"axis": axis})


@case("where")
def where(draw, name):
    shapes = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=4)
    ).input_shapes
    cond = draw(hnp.arrays(np.bool_, shapes[0]))
    x, y = floats(draw, shapes[1]), floats(draw, shapes[2])
    return Case([x, y], {"cond": cond})


@case("matmul")
def matmul(draw, name):
    k, m, n = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    batch_a, batch_b = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3)
    ).input_shapes
    shape_a = (k,) if draw(st.booleans()) else batch_a + (m, k)
    shape_b = (k,) if draw(st.booleans()) else batch_b + (k, n)
    return Case([floats(draw, shape_a), floats(draw, shape_b)], {})


UNARY_DOMAINS = {
    "tan": lambda x: 0.6 * x,
    "arcsin": lambda x: 0.45 * x,
    "arccos": lambda x: 0.45 * x,
    "arctanh": lambda x: 0.45 * x,
    "arccosh": lambda x: 1.2 + np.abs(x),
    "log2": lambda x: 0.3 + np.abs(x),
    "log10": lambda x: 0.3 + np.abs(x),
    "log1p": lambda x: -0.6 + np.abs(x),
    "reciprocal": lambda x: np.where(x < 0, x - 0.5, x + 0.5),
    "sign": lambda x: away_from(x, [0.0]),
    "floor": lambda x: away_from(x, [-2.0, -1.0, 0.0, 1.0, 2.0]),
    "ceil": lambda x: away_from(x, [-2.0, -1.0, 0.0, 1.0, 2.0]),
    "trunc": lambda x: away_from(x, [-2.0, -1.0, 0.0, 1.0, 2.0]),
    "round": lambda x: away_from(x, [-1.5, -0.5, 0.5, 1.5]),
}


@case(
    "sin",
    "cos",
    "tan",
    "arcsin",
    "arccos",
    "arctan",
    "sinh",
    "cosh",
    "arcsinh",
    "arccosh",
    "arctanh",
    "log2",
    "log10",
    "log1p",
    "expm1",
    "exp2",
    "square",
    "reciprocal",
    "sign",
    "floor",
    "ceil",
    "trunc",
    "round",
)
def more_unary(draw, name):
    x = UNARY_DOMAINS.get(name, lambda x: x)(floats(draw, draw(SHAPES)))
    return Case([x], {"decimals": 0} if name == "round" else {})


@case("arctan2", "logaddexp", "hypot")
def more_binary(draw, name):
    shape_a, shape_b = draw(TWO_SHAPES).input_shapes
    a, b = floats(draw, shape_a), floats(draw, shape_b)
    if name in ("arctan2", "hypot"):
        b = 0.5 + np.abs(b)  # away from the origin and from arctan2's cut (b < 0, a = 0)
    return Case([a, b], {})


@case("fmod", "remainder")
def modulo(draw, name):
    # a / b kept between the whole numbers, where d/db jumps.
    shape = draw(SHAPES)
    b = floats(draw, shape)
    b = np.where(b < 0, b - 0.5, b + 0.5)
    whole = draw(hnp.arrays(np.int64, shape, elements=st.integers(-3, 3)))
    part = floats(draw, shape, 0.2, 0.8)
    return Case([b * (whole + part), b], {})


@case("prod", "logsumexp", "norm")
def more_reductions(draw, name):
    shape = draw(SHAPES)
    x = floats(draw, shape)
    if name == "norm":
        x = away_from(x, [0.0])
    if name == "prod":  # exact zeros (a path of their own), but no product underflowing to 0,
        # and factors near 1 in size: with two zeros the slope is 0 and the central
        # difference is a cancellation whose error grows with the product of the others
        x = np.round(np.clip(x, -1.2, 1.2), 1)
    return Case([x], {"axis": axis_choice(draw, len(shape)), "keepdims": draw(st.booleans())})


@case("var", "std")
def moments(draw, name):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=4))
    attrs = {"axis": axis_choice(draw, len(shape)), "keepdims": draw(st.booleans())}
    return Case([distinct(draw, shape)], {**attrs, "ddof": draw(st.sampled_from([0, 1]))})


@case("cumsum", "cumprod", "sort", "flip")
def along_one_axis(draw, name):
    shape = draw(SHAPES)
    axis = (
        None if not shape or draw(st.booleans()) else draw(st.integers(-len(shape), len(shape) - 1))
    )
    x = distinct(draw, shape) if name == "sort" else floats(draw, shape)
    if name == "cumprod":  # exact zeros, but no product underflowing to 0, and factors near
        # 1 in size (as for prod: two zeros make the central difference a cancellation)
        x = np.round(np.clip(x, -1.2, 1.2), 1)
    return Case([x], {"axis": axis})


@case("argmax", "argmin")
def arg_extremum(draw, name):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    axis = None if draw(st.booleans()) else draw(st.integers(-len(shape), len(shape) - 1))
    return Case([distinct(draw, shape)], {"axis": axis, "keepdims": draw(st.booleans())})


EINSUMS = {
    "ij,jk->ik": "ij,jk",
    "ij->": "ij",
    "ij,ij->i": "ij,ij",
    "i,j->ij": "i,j",
    "ijk,kj->ik": "ijk,kj",
    "ij": "ij",
    "ij,jk": "ij,jk",
    "i->": "i",
    "ij,j,k->ik": "ij,j,k",
}


@case("einsum")
def einsum(draw, name):
    spec = draw(st.sampled_from(sorted(EINSUMS)))
    sizes = {c: draw(st.integers(1, 3)) for c in "ijk"}
    args = [floats(draw, tuple(sizes[c] for c in sub)) for sub in EINSUMS[spec].split(",")]
    return Case(args, {"subscripts": spec})


CONTRACTION_SHAPES = {
    "dot": [
        ((3,), (3,)),
        ((2, 3), (3,)),
        ((2, 3), (3, 4)),
        ((3,), (3, 4)),
        ((2, 2, 3), (4, 3, 2)),
        ((), (2, 3)),
    ],
    "inner": [((3,), (3,)), ((2, 3), (3,)), ((2, 3), (4, 3)), ((2, 2, 3), (2, 3))],
    "outer": [((3,), (2,)), ((2, 2), (3,)), ((), (2,))],
}


@case("dot", "inner", "outer")
def contraction(draw, name):
    shape_a, shape_b = draw(st.sampled_from(CONTRACTION_SHAPES[name]))
    return Case([floats(draw, shape_a), floats(draw, shape_b)], {})


@case("tensordot")
def tensordot(draw, name):
    shape_a, shape_b, axes = draw(
        st.sampled_from(
            [
                ((2, 3, 4), (3, 4, 2), 2),
                ((2, 3), (3, 2), 1),
                ((2, 3), (4,), 0),
                ((2, 3, 4), (4, 2, 3), ([1, 2], [2, 0])),
                ((3, 2), (2, 3), ([0], [1])),
            ]
        )
    )
    return Case([floats(draw, shape_a), floats(draw, shape_b)], {"axes": axes})


@case("diagonal", "trace")
def diagonal(draw, name):
    shape = draw(hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=4))
    axis1, axis2 = draw(st.permutations(range(len(shape))))[:2]
    offset = draw(st.integers(-1, 1))
    return Case([floats(draw, shape)], {"offset": offset, "axis1": axis1, "axis2": axis2})


@case("diag")
def diag(draw, name):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=4))
    return Case([floats(draw, shape)], {"k": draw(st.integers(-1, 1))})


@case("tril", "triu")
def triangle(draw, name):
    shape = draw(hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=4))
    return Case([floats(draw, shape)], {"k": draw(st.integers(-1, 1))})


@case("squeeze")
def squeeze(draw, name):
    shape = tuple(draw(st.lists(st.sampled_from([1, 2, 3]), min_size=0, max_size=3)))
    ones = [i for i, n in enumerate(shape) if n == 1]
    axis = None if not ones or draw(st.booleans()) else draw(st.sampled_from(ones))
    return Case([floats(draw, shape)], {"axis": axis})


@case("expand_dims")
def expand_dims(draw, name):
    shape = draw(SHAPES)
    return Case([floats(draw, shape)], {"axis": draw(st.integers(-len(shape) - 1, len(shape)))})


@case("ravel")
def ravel(draw, name):
    return Case([floats(draw, draw(SHAPES))], {})


@case("moveaxis")
def moveaxis(draw, name):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    axis = st.integers(-len(shape), len(shape) - 1)
    return Case([floats(draw, shape)], {"source": draw(axis), "destination": draw(axis)})


@case("roll")
def roll(draw, name):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    axis = None if draw(st.booleans()) else draw(st.integers(-len(shape), len(shape) - 1))
    return Case([floats(draw, shape)], {"shift": draw(st.integers(-5, 5)), "axis": axis})


@case("repeat")
def repeat(draw, name):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    axis = None if draw(st.booleans()) else draw(st.integers(0, len(shape) - 1))
    n = math.prod(shape) if axis is None else shape[axis]
    repeats = draw(
        st.one_of(st.integers(1, 3), st.lists(st.integers(0, 3), min_size=n, max_size=n))
    )
    return Case([floats(draw, shape)], {"repeats": repeats, "axis": axis})


@case("tile")
def tile(draw, name):
    shape = draw(SHAPES)
    reps = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
    return Case([floats(draw, shape)], {"reps": reps})


@case("pad")
def pad(draw, name):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    widths = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in shape)
    return Case([floats(draw, shape)], {"pad_width": widths, "constant_values": 0.5})


@case("astype")
def astype(draw, name):
    return Case([floats(draw, draw(SHAPES))], {"dtype": np.float64})


def draw_case(data: st.DataObject, name: str) -> Case:
    if name not in CASES:
        pytest.fail(f"op {name!r} has no case in tests/test_ops.py: add one to CASES")
    return data.draw(CASES[name](), label="case")


# ---------------------------------------------------------------------------------------
# PyTorch's counterpart of every op: TORCH[name](torch, *tensors, **attrs)
# ---------------------------------------------------------------------------------------


def torch_index(t, index: Any) -> Any:
    if isinstance(index, tuple):
        return tuple(torch_index(t, i) for i in index)
    if isinstance(index, np.ndarray):
        return t.as_tensor(index)
    return index


def torch_reduction(reduce: Callable, x: Any, axis: Any, keepdims: bool) -> Any:
    if axis is None:
        dims = tuple(range(x.ndim))
    else:
        dims = axis if isinstance(axis, tuple) else (axis,)
    if not dims:  # a 0-d input: nothing to reduce
        return x * 1
    return reduce(x, dim=dims, keepdim=keepdims)


def torch_permute(x: Any, axes: tuple[int, ...] | None) -> Any:
    return x.permute(tuple(reversed(range(x.ndim))) if axes is None else axes)


def torch_scatter(t, g: Any, index: Any, shape: tuple[int, ...]) -> Any:
    # scatter is the adjoint of indexing: PyTorch's own backward of x[index].
    x = t.zeros(shape, dtype=t.float64, requires_grad=True)
    (out,) = t.autograd.grad(x[torch_index(t, index)], x, g, create_graph=True)
    return out


TORCH: dict[str, Callable[..., Any]] = {
    "add": lambda t, a, b: a + b,
    "sub": lambda t, a, b: a - b,
    "mul": lambda t, a, b: a * b,
    "div": lambda t, a, b: a / b,
    "pow": lambda t, a, b: a**b,
    "maximum": lambda t, a, b: t.maximum(a, b),
    "minimum": lambda t, a, b: t.minimum(a, b),
    "matmul": lambda t, a, b: a @ b,
    "neg": lambda t, x: -x,
    "abs": lambda t, x: x.abs(),
    "exp": lambda t, x: x.exp(),
    "log": lambda t, x: x.log(),
    "sqrt": lambda t, x: x.sqrt(),
    "softplus": lambda t, x: t.nn.functional.softplus(x),
    "relu": lambda t, x: t.relu(x),
    "leaky_relu": lambda t, x: t.nn.functional.leaky_relu(x),
    "sigmoid": lambda t, x: t.sigmoid(x),
    "tanh": lambda t, x: t.tanh(x),
    "clip": lambda t, x, lo, hi: t.clamp(x, min=lo, max=hi),
    "softmax": lambda t, x, axis: t.softmax(x, dim=axis),
    "log_softmax": lambda t, x, axis: t.log_softmax(x, dim=axis),
    "sum": lambda t, x, axis, keepdims: torch_reduction(t.sum, x, axis, keepdims),
    "mean": lambda t, x, axis, keepdims: torch_reduction(t.mean, x, axis, keepdims),
    "max": lambda t, x, axis, keepdims: torch_reduction(t.amax, x, axis, keepdims),
    "min": lambda t, x, axis, keepdims: torch_reduction(t.amin, x, axis, keepdims),
    "reshape": lambda t, x, shape: x.reshape(shape),
    "transpose": lambda t, x, axes: torch_permute(x, axes),
    "swapaxes": lambda t, x, axis1, axis2: x.transpose(axis1, axis2),
    "broadcast_to": lambda t, x, shape: x.expand(shape),
    "getitem": lambda t, x, index: x[torch_index(t, index)],
    "scatter": torch_scatter,
    "concatenate": lambda t, *xs, axis: t.cat(xs, dim=axis),
    "stack": lambda t, *xs, axis: t.stack(xs, dim=axis),
    "where": lambda t, x, y, cond: t.where(t.as_tensor(cond), x, y),
}


def dims_of(x: Any, axis: Any) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(x.ndim))
    return axis if isinstance(axis, tuple) else (axis,)


def torch_prod(t, x, axis, keepdims):
    dims = [d % max(x.ndim, 1) for d in dims_of(x, axis)]
    rest = [d for d in range(x.ndim) if d not in dims]
    moved = x.permute(rest + dims).reshape([x.shape[d] for d in rest] + [-1])
    out = moved.prod(-1)
    if keepdims:
        out = out.reshape([1 if d in dims else x.shape[d] for d in range(x.ndim)])
    return out


def torch_moment(t, x, axis, keepdims, ddof, reduce):
    return reduce(x, dim=dims_of(x, axis), correction=ddof, keepdim=keepdims)


def torch_flat(x, axis):
    return (x.reshape(-1), 0) if axis is None else (x, axis)


def torch_pad(t, x, pad_width, constant_values):
    flat = [w for pair in reversed(pad_width) for w in pair]
    return t.nn.functional.pad(x, flat, value=constant_values)


def torch_repeat(t, x, repeats, axis):
    r = t.as_tensor(repeats) if isinstance(repeats, list) else repeats
    return t.repeat_interleave(x, r, dim=axis)


def torch_dot(t, a, b):
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    return t.tensordot(a, b, dims=([a.ndim - 1], [b.ndim - 2 if b.ndim >= 2 else 0]))


def torch_inner(t, a, b):
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    return t.tensordot(a, b, dims=([a.ndim - 1], [b.ndim - 1]))


TORCH.update(
    {
        "sin": lambda t, x: x.sin(),
        "cos": lambda t, x: x.cos(),
        "tan": lambda t, x: x.tan(),
        "arcsin": lambda t, x: x.asin(),
        "arccos": lambda t, x: x.acos(),
        "arctan": lambda t, x: x.atan(),
        "sinh": lambda t, x: x.sinh(),
        "cosh": lambda t, x: x.cosh(),
        "arcsinh": lambda t, x: x.asinh(),
        "arccosh": lambda t, x: x.acosh(),
        "arctanh": lambda t, x: x.atanh(),
        "log2": lambda t, x: x.log2(),
        "log10": lambda t, x: x.log10(),
        "log1p": lambda t, x: x.log1p(),
        "expm1": lambda t, x: x.expm1(),
        "exp2": lambda t, x: t.exp2(x),
        "square": lambda t, x: t.square(x),
        "reciprocal": lambda t, x: x.reciprocal(),
        "sign": lambda t, x: x.sign(),
        "floor": lambda t, x: x.floor(),
        "ceil": lambda t, x: x.ceil(),
        "trunc": lambda t, x: x.trunc(),
        "round": lambda t, x, decimals: t.round(x, decimals=decimals),
        "arctan2": lambda t, a, b: t.atan2(*t.broadcast_tensors(a, b)),
        "logaddexp": lambda t, a, b: t.logaddexp(*t.broadcast_tensors(a, b)),
        "hypot": lambda t, a, b: t.hypot(*t.broadcast_tensors(a, b)),
        "fmod": lambda t, a, b: t.fmod(a, b),
        "remainder": lambda t, a, b: t.remainder(a, b),
        "prod": torch_prod,
        "var": lambda t, x, axis, keepdims, ddof: torch_moment(t, x, axis, keepdims, ddof, t.var),
        "std": lambda t, x, axis, keepdims, ddof: torch_moment(t, x, axis, keepdims, ddof, t.std),
        "logsumexp": lambda t, x, axis, keepdims: (
            x * 1 if x.ndim == 0 else t.logsumexp(x, dim=dims_of(x, axis), keepdim=keepdims)
        ),
        "norm": lambda t, x, axis, keepdims: t.linalg.vector_norm(
            x, dim=None if axis is None else dims_of(x, axis), keepdim=keepdims
        ),
        "cumsum": lambda t, x, axis: t.cumsum(*torch_flat(x, axis)),
        "cumprod": lambda t, x, axis: t.cumprod(*torch_flat(x, axis)),
        "sort": lambda t, x, axis: t.sort(*torch_flat(x, axis)).values,
        "flip": lambda t, x, axis: t.flip(x, dims=dims_of(x, axis)),
        "einsum": lambda t, *xs, subscripts: t.einsum(subscripts, *xs),
        "dot": torch_dot,
        "inner": torch_inner,
        "outer": lambda t, a, b: t.outer(a.reshape(-1), b.reshape(-1)),
        "tensordot": lambda t, a, b, axes: t.tensordot(a, b, dims=axes),
        "diagonal": lambda t, x, offset, axis1, axis2: t.diagonal(x, offset, axis1, axis2),
        "trace": lambda t, x, offset, axis1, axis2: t.diagonal(x, offset, axis1, axis2).sum(-1),
        "diag": lambda t, x, k: t.diag(x, k),
        "tril": lambda t, x, k: t.tril(x, k),
        "triu": lambda t, x, k: t.triu(x, k),
        "squeeze": lambda t, x, axis: x.squeeze() if axis is None else x.squeeze(axis),
        "expand_dims": lambda t, x, axis: x.unsqueeze(axis),
        "ravel": lambda t, x: x.reshape(-1),
        "moveaxis": lambda t, x, source, destination: t.movedim(x, source, destination),
        "roll": lambda t, x, shift, axis: t.roll(x, shift, axis),
        "repeat": torch_repeat,
        "tile": lambda t, x, reps: t.tile(x, reps),
        "pad": torch_pad,
        "astype": lambda t, x, dtype: x.to(t.float64),
        "argmax": lambda t, x, axis, keepdims: t.argmax(x, dim=axis, keepdim=keepdims),
        "argmin": lambda t, x, axis, keepdims: t.argmin(x, dim=axis, keepdim=keepdims),
    }
)


# ---------------------------------------------------------------------------------------
# 1. Gradients against central finite differences
# ---------------------------------------------------------------------------------------


def weighted_sum(name: str, case: Case, weights: np.ndarray) -> Callable[..., cr.Tensor]:
    """The scalar ``sum(op(*xs) * weights)``: its gradient is the op's VJP with ``weights``."""
    op = OPS[name]
    return lambda *xs: (apply(op, *xs, **case.attrs) * weights).sum()


def output_shape(name: str, case: Case) -> tuple[int, ...]:
    return np.shape(OPS[name].forward(*case.args, **case.attrs))


def output_weights(data: st.DataObject, name: str, case: Case) -> np.ndarray:
    shape = output_shape(name, case)
    return data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-1, 1)), label="weights")


def test_every_op_has_a_case_and_a_pytorch_counterpart():
    assert sorted(CASES) == sorted(OPS)
    assert sorted(TORCH) == sorted(OPS)


@pytest.mark.parametrize("name", sorted(OPS))
@EXAMPLES
@given(data=st.data())
def test_gradient_matches_finite_differences(name, data):
    case = draw_case(data, name)
    if not OPS[name].differentiable:  # argmax, argmin: indices, outside the graph
        found = TABLE_FUNCTIONS[name](cr.Tensor(case.args[0], requires_grad=True), **case.attrs)
        assert isinstance(found, np.ndarray) and found.dtype.kind == "i"
        np.testing.assert_array_equal(found, getattr(np, name)(*case.args, **case.attrs))
        return
    weights = output_weights(data, name, case)
    cr.check_grads(weighted_sum(name, case, weights), *case.args)


SHAPE_ONLY = sorted(name for name, op in OPS.items() if not op.reads_inputs)


def test_the_ops_that_read_only_shapes_are_the_expected_ones():
    assert SHAPE_ONLY == ["add", "mean", "neg", "sub", "sum"]


@pytest.mark.parametrize("name", SHAPE_ONLY)
@EXAMPLES
@given(data=st.data())
def test_rules_marked_reads_inputs_false_give_the_same_gradient_for_any_values(name, data):
    # The engine neither guards nor checks these ops' inputs: their rules must not read
    # the values. Other inputs (and another output) of the same shapes change nothing.
    op = OPS[name]
    case = draw_case(data, name)
    out = op.forward(*case.args, **case.attrs)
    g = np.asarray(data.draw(hnp.arrays(np.float64, np.shape(out), elements=st.floats(-2, 2))))
    other = [a + 1.5 for a in case.args]
    for i, rule in enumerate(op.rules):
        expected = rule(g, out, *case.args, **case.attrs)
        found = rule(g, np.asarray(out) - 3.0, *other, **case.attrs)
        np.testing.assert_array_equal(found, expected, err_msg=f"{name}, input {i + 1}")


NAMED_SHAPES = [((3, 1), (4,)), ((), (2, 3)), ((2, 3), ()), ((2, 1, 3), (4, 1)), ((1,), (5,))]


@pytest.mark.parametrize("shapes", NAMED_SHAPES, ids=str)
@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow", "maximum", "minimum"])
@settings(max_examples=3, deadline=None)
@given(data=st.data())
def test_binary_gradient_under_named_broadcasts(name, shapes, data):
    case = data.draw(st.composite(lambda draw: binary(draw, name, shapes))())
    weights = output_weights(data, name, case)
    cr.check_grads(weighted_sum(name, case, weights), *case.args)


# ---------------------------------------------------------------------------------------
# 2. Values, gradients and second derivatives against PyTorch
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def close(ours: Any, theirs: Any, what: str) -> None:
    theirs = theirs.detach().numpy(force=True) if hasattr(theirs, "detach") else theirs
    ours = ours.data if isinstance(ours, cr.Tensor) else ours
    assert np.shape(ours) == np.shape(theirs), what
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12, err_msg=what)


def compare_with_pytorch(torch, name: str, case: Case, weights, directions) -> None:
    """Value, gradient of sum(out * weights) and its derivative along ``directions``."""
    if not OPS[name].differentiable:
        ts = [torch.tensor(a, dtype=torch.float64) for a in case.args]
        expected = TORCH[name](torch, *ts, **case.attrs).numpy()
        np.testing.assert_array_equal(TABLE_FUNCTIONS[name](*case.args, **case.attrs), expected)
        return
    xs = [cr.Tensor(a, requires_grad=True) for a in case.args]
    out = apply(OPS[name], *xs, **case.attrs)
    assert out.dtype == np.float64
    grads = cr.gradients(out, xs, gradient=cr.Tensor(weights), create_graph=True)
    along = cr.tensor(0.0)
    for g, v in zip(grads, directions, strict=True):
        along = along + (g * v).sum()
    hvp = cr.gradients(along, xs) if along.requires_grad else [np.zeros_like(a) for a in case.args]

    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in case.args]
    t_out = TORCH[name](torch, *ts, **case.attrs)
    t_grads = torch.autograd.grad(
        t_out, ts, torch.tensor(weights), create_graph=True, allow_unused=True
    )
    t_grads = [torch.zeros_like(t) if g is None else g for g, t in zip(t_grads, ts, strict=True)]
    t_along = sum((g * torch.tensor(v)).sum() for g, v in zip(t_grads, directions, strict=True))
    if t_along.requires_grad:
        t_hvp = torch.autograd.grad(t_along, ts, allow_unused=True)
        t_hvp = [torch.zeros_like(t) if h is None else h for h, t in zip(t_hvp, ts, strict=True)]
    else:
        t_hvp = [torch.zeros_like(t) for t in ts]

    close(out, t_out, f"{name}: value")
    for i in range(len(xs)):
        close(grads[i], t_grads[i], f"{name}: gradient of input {i}")
        close(hvp[i], t_hvp[i], f"{name}: second derivative of input {i}")


@pytest.mark.parametrize("name", sorted(OPS))
@EXAMPLES
@given(data=st.data())
def test_matches_pytorch(name, data, torch):
    case = draw_case(data, name)
    weights = output_weights(data, name, case)
    directions = [
        data.draw(hnp.arrays(np.float64, a.shape, elements=st.floats(-1, 1)), label="v")
        for a in case.args
    ]
    compare_with_pytorch(torch, name, case, weights, directions)


# ---------------------------------------------------------------------------------------
# 2b. Every printed formula equals its rule, numerically
# ---------------------------------------------------------------------------------------

#: Ops whose formula text is not one number per entry, and why (the others are checked).
NOT_PER_ENTRY = {
    "matmul": "matrix notation (B^T); the explainer writes one entry through Op.entry",
    "softmax": "a Jacobian with Kronecker's delta",
    "log_softmax": "a Jacobian with Kronecker's delta",
    "max": "words: 1 at the maximum",
    "min": "words: 1 at the minimum",
    "getitem": "moves entries: the picked ones get the gradient",
    "scatter": "moves entries: the adjoint of indexing",
    "broadcast_to": "copies of an entry: their gradients are summed",
    "clip": "a condition on the bounds, in words",
    "where": "a condition in words",
    "argmax": "no gradient",
    "argmin": "no gradient",
    "cumsum": "each entry is in every later running sum",
    "cumprod": "each entry is in every later running product",
    "diag": "moves entries onto or off a diagonal",
    "diagonal": "moves entries off the diagonal",
    "trace": "the diagonal entries only",
    "tril": "the entries below the diagonal only",
    "triu": "the entries above the diagonal only",
    "repeat": "copies of an entry: their gradients are summed",
    "tile": "copies of an entry: their gradients are summed",
    "dot": "matrix notation",
    "inner": "matrix notation",
    "outer": "one factor's entries against the other's",
    "tensordot": "matrix notation",
    "einsum": "words: a contraction with the other operands",
}


def test_every_formula_is_checked_or_said_why_not():
    assert set(NOT_PER_ENTRY) <= set(OPS)
    for name in sorted(set(OPS) - set(NOT_PER_ENTRY)):
        for formula in OPS[name].formulas:
            readable = CONDITION.fullmatch(formula) or not isinstance(
                symbolic.template(formula), symbolic.Phrase
            )
            assert readable, (name, formula)


#: A derivative written as a condition: ``1 if {a} > {b} else 0`` (leaky_relu: else 0.01).
CONDITION = re.compile(r"1 if (.+) ([<>]) (.+) else ([0-9.]+)")


def check_formula(op: Op, case: Case) -> None:
    """The formula is d out / d input, entry by entry: what the rule returns for a gradient
    of ones (inputs of one shape; reductions keep their axes so that {out} lines up)."""
    args = [np.array(a) for a in np.broadcast_arrays(*case.args)] if op.elementwise else case.args
    attrs = dict(case.attrs)
    if "keepdims" in attrs:  # a reduction's formula reads over everything: mean({x}), n
        attrs["keepdims"], attrs["axis"] = True, None
    if op.name == "prod":  # out / x holds where x is not 0 (the rule is exact there too)
        args = [np.where(a == 0, 0.7, a) for a in args]
    out = op.forward(*args, **attrs)
    values = {"out": out, "n": args[0].size / max(np.size(out), 1), **attrs}
    values.update({"x": args[0]} if op.arity == 1 else dict(zip("ab", args, strict=False)))
    for k, a in enumerate(args):
        formula = op.formulas[0 if op.arity is None else k]
        rule = op.rules[0] if op.arity is None else op.rules[k]
        extra = {"i": k} if op.arity is None else {}
        expected = rule(np.ones(np.shape(out)), out, *args, **extra, **attrs)
        condition = CONDITION.fullmatch(formula)
        if condition:  # "1 if {x} > 0 else 0": both sides evaluated, compared entry by entry
            left, compare, right, otherwise = condition.groups()
            lhs = symbolic.evaluate(symbolic.template(left), values)
            rhs = symbolic.evaluate(symbolic.template(right), values)
            printed = np.where(
                np.greater(lhs, rhs) if compare == ">" else np.less(lhs, rhs),
                1.0,
                float(otherwise),
            )
            untied = np.broadcast_to(np.not_equal(lhs, rhs), np.shape(a))  # ties: a choice
        else:
            printed = symbolic.evaluate(symbolic.template(formula), values)
            untied = np.ones(np.shape(a), dtype=bool)
        printed = np.broadcast_to(printed, np.shape(a))
        np.testing.assert_allclose(
            printed[untied],
            np.broadcast_to(expected, np.shape(a))[untied],
            rtol=1e-9,
            atol=1e-12,
            err_msg=f"{op.name}: {formula}",
        )


@pytest.mark.parametrize("name", sorted(set(OPS) - set(NOT_PER_ENTRY)))
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_printed_formula_equals_the_rule(name, data):
    check_formula(OPS[name], draw_case(data, name))


def test_a_wrong_formula_text_is_caught():
    wrong = dataclasses.replace(OPS["tanh"], formulas=("1 - tanh({x})",))
    with pytest.raises(AssertionError, match="tanh"):
        check_formula(wrong, Case([np.array([0.3, -1.2])], {}))
    flipped = dataclasses.replace(OPS["relu"], formulas=("1 if {x} < 0 else 0",))
    with pytest.raises(AssertionError, match="relu"):
        check_formula(flipped, Case([np.array([0.3, -1.2])], {}))


# ---------------------------------------------------------------------------------------
# 3. Named cases: the variants that matter, whatever hypothesis happens to draw
# ---------------------------------------------------------------------------------------

RNG = np.random.default_rng(7)


def normal(*shape: int) -> np.ndarray:
    return RNG.uniform(-2.0, 2.0, shape)


def ranks(*shape: int) -> np.ndarray:
    """Distinct values (no ties for max and min)."""
    return RNG.permutation(math.prod(shape)).reshape(shape) * 0.3 - 1.0


MASK = np.array([[True, False, True], [False, False, True], [True, True, False], [False] * 3])
NAMED = [
    ("getitem", [normal(5, 3)], {"index": np.array([0, 2, 2, -1, 0])}, "repeated rows"),
    (
        "getitem",
        [normal(4, 3)],
        {"index": (np.array([[0], [3], [0]]), np.array([1, 1, 2]))},
        "broadcast fancy indices with repeats",
    ),
    (
        "getitem",
        [normal(4, 3)],
        {"index": (slice(1, None, 2), np.array([2, 0, 2]))},
        "slice and fancy",
    ),
    (
        "getitem",
        [normal(4, 3)],
        {"index": (Ellipsis, None, slice(None, 2))},
        "ellipsis, newaxis, slice",
    ),
    ("getitem", [normal(4, 3)], {"index": MASK}, "boolean mask"),
    ("getitem", [normal(2, 3, 4)], {"index": (1, slice(None), -1)}, "ints and slice"),
    (
        "scatter",
        [normal(5, 3)],
        {"index": np.array([0, 2, 2, -1, 0]), "shape": (5, 3)},
        "repeated rows",
    ),
    ("matmul", [normal(2, 1, 3, 4), normal(5, 4, 2)], {}, "batched with broadcasting"),
    ("matmul", [normal(3, 4), normal(4, 2)], {}, "2-D @ 2-D"),
    ("matmul", [normal(4), normal(4)], {}, "1-D @ 1-D"),
    ("matmul", [normal(3, 4), normal(4)], {}, "2-D @ 1-D"),
    ("matmul", [normal(4), normal(4, 2)], {}, "1-D @ 2-D"),
    ("matmul", [normal(4), normal(2, 4, 3)], {}, "1-D @ batched"),
    ("matmul", [normal(2, 3, 4), normal(4)], {}, "batched @ 1-D"),
    ("sum", [normal(2, 3, 4)], {"axis": (0, -1), "keepdims": True}, "axes, keepdims"),
    ("sum", [normal(2, 3)], {"axis": None, "keepdims": False}, "all"),
    ("mean", [normal(2, 3, 4)], {"axis": -2, "keepdims": False}, "negative axis"),
    ("mean", [normal(2, 3)], {"axis": None, "keepdims": True}, "all, keepdims"),
    ("max", [ranks(2, 3, 4)], {"axis": (1, 2), "keepdims": True}, "axes, keepdims"),
    ("max", [ranks(3, 4)], {"axis": None, "keepdims": False}, "all"),
    ("min", [ranks(3, 4)], {"axis": 0, "keepdims": False}, "axis 0"),
    ("softmax", [normal(3, 4)], {"axis": 0}, "axis 0"),
    ("log_softmax", [normal(2, 3, 4)], {"axis": 1}, "middle axis"),
    ("reshape", [normal(2, 3, 4)], {"shape": (4, -1)}, "with -1"),
    ("transpose", [normal(2, 3, 4)], {"axes": (-1, 0, 1)}, "negative axes"),
    ("transpose", [normal(2, 3, 4)], {"axes": None}, "reversed"),
    ("swapaxes", [normal(2, 3, 4)], {"axis1": 0, "axis2": -1}, "first and last"),
    ("concatenate", [normal(2, 3), normal(2, 1), normal(2, 2)], {"axis": -1}, "last axis"),
    ("stack", [normal(2, 3), normal(2, 3), normal(2, 3)], {"axis": 1}, "middle axis"),
    (
        "where",
        [normal(4), np.array(0.5)],
        {"cond": np.array([[True], [False], [True]])},
        "condition (3, 1), x (4,), y ()",
    ),
    ("clip", [away_from(normal(3, 4), [-0.5, 0.5])], {"lo": -0.5, "hi": 0.5}, "both bounds"),
    ("add", [normal(3, 1), normal(4)], {}, "(3, 1) + (4,)"),
    ("mul", [normal(), normal(2, 3)], {}, "scalar * array"),
    ("div", [normal(2, 3), 0.5 + np.abs(normal(3))], {}, "array / row"),
    ("pow", [0.5 + np.abs(normal(3, 1)), normal(4)], {}, "(3, 1) ** (4,)"),
    ("maximum", [normal(3, 1), normal(4) + 0.01], {}, "(3, 1) vs (4,)"),
    ("broadcast_to", [normal(3, 1)], {"shape": (2, 3, 4)}, "(3, 1) to (2, 3, 4)"),
]


@pytest.mark.parametrize(
    "number, name, args, attrs",
    [pytest.param(i, *c[:3], id=f"{c[0]}: {c[3]}") for i, c in enumerate(NAMED)],
)
def test_named_case(number, name, args, attrs):
    rng = np.random.default_rng(number)  # the same weights whichever cases run
    case = Case(args, attrs)
    weights = rng.uniform(-1.0, 1.0, output_shape(name, case))
    cr.check_grads(weighted_sum(name, case, weights), *args)
    directions = [rng.uniform(-1.0, 1.0, np.shape(a)) for a in args]
    compare_with_pytorch(pytest.importorskip("torch"), name, case, weights, directions)


@pytest.mark.parametrize(
    "name, args, attrs",
    [
        ("maximum", [np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 3.0])], {}),
        ("minimum", [np.array([[1.0], [2.0]]), np.array([1.0, 2.0])], {}),
        ("max", [np.array([[2.0, 5.0, 5.0], [1.0, 1.0, 0.0]])], {"axis": 1, "keepdims": False}),
        ("min", [np.array([[2.0, 5.0, 2.0], [2.0, 1.0, 3.0]])], {"axis": None, "keepdims": False}),
    ],
)
def test_ties_share_the_gradient_like_pytorch(name, args, attrs, torch):
    # At a tie the derivative does not exist (finite differences cannot check it); the
    # engine splits the gradient equally between the tied entries, as PyTorch does.
    case = Case(args, attrs)
    weights = np.arange(1.0, 1.0 + math.prod(output_shape(name, case))).reshape(
        output_shape(name, case)
    )
    directions = [np.ones_like(a) for a in args]
    compare_with_pytorch(torch, name, case, weights, directions)


@pytest.mark.parametrize(
    "base, exponent",
    [
        pytest.param([0.0, 1.5, -2.0], 0.0, id="x ** 0 at x = 0 (a constant exponent)"),
        pytest.param([0.0, 0.0, 2.0, 3.0], [0.0, 2.0, 0.0, 0.5], id="zeros in base and exponent"),
        pytest.param([[0.0], [2.0]], [0.0, 1.0, 3.0], id="a zero base broadcast"),
    ],
)
def test_pow_where_the_exponent_is_zero_like_pytorch(base, exponent, torch):
    # a^0 is the constant 1, so its slope is 0, at a = 0 too (the power rule's
    # 0 * 0^-1 used to give NaN there). Values and first derivatives as PyTorch's.
    a = cr.tensor(base, requires_grad=True)
    b = cr.tensor(exponent, requires_grad=np.ndim(exponent) > 0)
    ta = torch.tensor(base, dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(exponent, dtype=torch.float64, requires_grad=b.requires_grad)
    out, t_out = a**b, ta**tb
    weights = np.arange(1.0, 1.0 + out.size).reshape(out.shape)
    inputs, t_inputs = ([a, b], [ta, tb]) if b.requires_grad else ([a], [ta])
    grads = cr.gradients(out, inputs, gradient=weights)
    t_grads = torch.autograd.grad(t_out, t_inputs, torch.tensor(weights))
    close(out, t_out, "pow: value")
    for i, (g, t_g) in enumerate(zip(grads, t_grads, strict=True)):
        assert np.isfinite(g).all()
        close(g, t_g, f"pow: gradient of input {i}")


def test_pow_second_derivatives_where_the_exponent_is_zero():
    # PyTorch masks the base's gradient where b = 0 and so loses d/db (b a^(b-1)) = 1/a
    # there; the engine keeps it. The Hessian along (va, vb) against central differences of
    # the first derivatives, at a positive base (the exponent moves around 0).
    def first_derivatives(a, b, create_graph=False):
        a, b = cr.tensor(a, requires_grad=True), cr.tensor(b, requires_grad=True)
        return a, b, cr.gradients((a**b).sum(), [a, b], create_graph=create_graph)

    a0, b0 = np.array([2.0, 0.7]), np.array([0.0, 0.0])
    va, vb = np.array([1.0, -2.0]), np.array([0.5, 3.0])
    a, b, (ga, gb) = first_derivatives(a0, b0, create_graph=True)
    along = (ga * va).sum() + (gb * vb).sum()
    ha, hb = cr.gradients(along, [a, b])
    engine = (ha * va).sum() + (hb * vb).sum()
    eps = 1e-6
    _, _, (pa, pb) = first_derivatives(a0 + eps * va, b0 + eps * vb)
    _, _, (ma, mb) = first_derivatives(a0 - eps * va, b0 - eps * vb)
    numeric = (((pa - ma) * va).sum() + ((pb - mb) * vb).sum()) / (2 * eps)
    assert engine == pytest.approx(numeric, rel=1e-6)


def test_pow_exponent_gradient_at_a_negative_base_is_zero_where_pytorch_gives_nan(torch):
    # A negative base has real powers only at integer exponents, so a^b has no derivative
    # in b there. PyTorch returns a^b ln a = NaN; the engine returns 0 wherever a <= 0 (see
    # ops.pow_b), so one such term cannot turn every shared gradient into NaN.
    a = cr.tensor([-2.0, -2.0, 0.0, 0.0], requires_grad=True)
    b = cr.tensor([2.0, 0.0, 2.0, -1.0], requires_grad=True)
    with np.errstate(divide="ignore"):
        (gb,) = cr.gradients((a**b).sum(), [b])
    np.testing.assert_array_equal(gb, [0.0, 0.0, 0.0, 0.0])
    ta = torch.tensor([-2.0, -2.0, 0.0, 0.0], dtype=torch.float64)
    tb = torch.tensor([2.0, 0.0, 2.0, -1.0], dtype=torch.float64, requires_grad=True)
    (t_gb,) = torch.autograd.grad((ta**tb).sum(), [tb])
    np.testing.assert_array_equal(t_gb.numpy(), [np.nan, np.nan, 0.0, -np.inf])


# ---------------------------------------------------------------------------------------
# 4. The table is the one registry
# ---------------------------------------------------------------------------------------


def test_an_entry_needs_one_rule_and_one_formula_per_input():
    tanh = OPS["tanh"]
    with pytest.raises(ValueError, match="op 'tanh': 2 backward rule"):
        dataclasses.replace(tanh, rules=(tanh.rules[0], tanh.rules[0]))
    with pytest.raises(ValueError, match="op 'add': 1 derivative formula"):
        dataclasses.replace(OPS["add"], formulas=("1",))
    with pytest.raises(TypeError):  # keywords only: no entry depends on field order
        Op("x", np.negative, (), (), "")  # type: ignore[misc]


def test_functions_methods_and_names_are_read_from_the_table():
    from chainrule.formula import FUNCTIONS as FORMULA_FUNCTIONS
    from chainrule.nn import ACTIVATIONS

    for op in OPS.values():
        for name in (op.name, *op.aliases):
            if op.function:
                assert getattr(cr, name) is TABLE_FUNCTIONS[name], name
                assert name in cr.__all__, name
            if op.method:
                assert callable(getattr(cr.Tensor, name)), name
    wanted = {name for op in OPS.values() for name in op.formula_names}
    assert set(FORMULA_FUNCTIONS) == wanted
    assert {name for name, op in OPS.items() if op.activation} | {"identity"} == set(ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(n for n, op in OPS.items() if op.method))
@settings(max_examples=3, deadline=None)
@given(data=st.data())
def test_a_method_records_its_own_op(name, data):
    op = OPS[name]
    case = draw_case(data, name)
    x = cr.Tensor(case.args[0], requires_grad=True)
    out = getattr(x, name)(*[cr.Tensor(a) for a in case.args[1:]], *case.attrs.values())
    if op.differentiable:
        assert out.op is op
    np.testing.assert_allclose(np.asarray(out), op.forward(*case.args, **case.attrs))


def test_the_engine_doc_lists_every_op_as_the_table_writes_it():
    from pathlib import Path

    from chainrule.ops import reference_markdown

    doc = (Path(__file__).parent.parent / "docs" / "engine.md").read_text(encoding="utf-8")
    start = doc.index("<!-- ops table: generated -->\n") + len("<!-- ops table: generated -->\n")
    end = doc.index("<!-- end of ops table -->")
    assert doc[start:end] == reference_markdown(), (
        "docs/engine.md is out of date: paste chainrule.ops.reference_markdown() between "
        "its markers"
    )


#: Ops with no gradient at all (they return indices).
SECOND_ORDER_SKIPPED = {"argmax", "argmin"}


def _gradient_values(f: Callable[..., cr.Tensor], args: list[np.ndarray]) -> list[np.ndarray]:
    leaves = [cr.tensor(a, requires_grad=True) for a in args]
    out = f(*leaves)
    if not out.requires_grad:
        return [np.zeros(np.shape(a)) for a in args]
    grads = cr.gradients(out, leaves)
    return [
        np.zeros(np.shape(a)) if g is None else np.asarray(ops.value(g))
        for g, a in zip(grads, args, strict=True)
    ]


@pytest.mark.parametrize("name", sorted(set(OPS) - SECOND_ORDER_SKIPPED))
@settings(max_examples=3, deadline=None)
@given(data=st.data())
def test_second_derivative_matches_finite_differences(name, data):
    # The engine's second derivative (the gradient of grad . v, recorded with create_graph)
    # along u, against central differences of the engine's own gradient along u.
    case = draw_case(data, name)
    f = weighted_sum(name, case, output_weights(data, name, case))
    args = [np.asarray(a, dtype=np.float64) for a in case.args]
    rng = np.random.default_rng(1)
    u = [rng.standard_normal(a.shape) for a in args]
    v = [rng.standard_normal(a.shape) for a in args]
    leaves = [cr.tensor(a, requires_grad=True) for a in args]
    out = f(*leaves)
    if not out.requires_grad:
        return
    grads = cr.gradients(out, leaves, create_graph=True)
    along = sum((g * vi).sum() for g, vi in zip(grads, v, strict=True) if isinstance(g, cr.Tensor))
    if not isinstance(along, cr.Tensor) or not along.requires_grad:
        engine = 0.0  # the gradient does not depend on the inputs: second derivative 0
    else:
        hv = cr.gradients(along, leaves)
        engine = sum(
            float(np.sum(np.asarray(ops.value(h)) * ui))
            for h, ui in zip(hv, u, strict=True)
            if h is not None
        )
    eps = 1e-5
    ahead = _gradient_values(f, [a + eps * ui for a, ui in zip(args, u, strict=True)])
    behind = _gradient_values(f, [a - eps * ui for a, ui in zip(args, u, strict=True)])
    differences = sum(
        float(np.sum((g1 - g0) * vi)) / (2 * eps)
        for g1, g0, vi in zip(ahead, behind, v, strict=True)
    )
    assert engine == pytest.approx(differences, rel=1e-4, abs=1e-5), name
