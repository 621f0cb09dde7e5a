"""The NaN rule of the op table: a NaN is never hidden by a zero.

A NaN that flows into an op's backward pass (a NaN entry of the incoming gradient) leaves
a NaN in the gradient of an input, and a NaN input of an elementwise op whose local
derivative reads that input gives a NaN gradient at that entry. PyTorch hides NaN in
several of these ops (relu, maximum, clip, abs, max, where, floor ...); docs/engine.md
lists what each does.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_ops import CASES, output_shape

import chainrule as cr
from chainrule.ops import OPS
from chainrule.tensor import apply

DIFFERENTIABLE = sorted(name for name, op in OPS.items() if op.differentiable)

#: Elementwise ops whose local derivative for an input does not read that input's value
#: (d(a + b)/da = 1 whatever a is; where picks by its condition): a NaN input there has a
#: finite, correct gradient. Every other elementwise rule reads the value, so NaN -> NaN.
VALUE_FREE = {
    ("add", 0),
    ("add", 1),
    ("sub", 0),
    ("sub", 1),
    ("neg", 0),
    ("where", 0),
    ("where", 1),
    ("fmod", 0),
    ("remainder", 0),
    ("mul", 0),  # d(a b)/da = b: reads the other input only
    ("mul", 1),
    ("div", 0),  # d(a/b)/da = 1/b
    ("astype", 0),
}
ELEMENTWISE = sorted(
    (name, i)
    for name, op in OPS.items()
    if op.elementwise and op.differentiable
    for i in range(op.arity)
    if (name, i) not in VALUE_FREE
)


def _gradients(name: str, args: list[np.ndarray], attrs: dict, incoming: np.ndarray):
    xs = [cr.Tensor(a, requires_grad=True) for a in args]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NaN on purpose
        out = apply(OPS[name], *xs, **attrs)
        out.backward(gradient=incoming)
    return [np.broadcast_to(x.grad, x.shape) if x.grad is not None else None for x in xs]


def _constant_entry(name: str, case, k: int) -> bool:
    """Whether output entry ``k`` stays the same whatever the inputs are (3 random draws)."""
    rng = np.random.default_rng(k)
    seen = set()
    for _ in range(3):
        args = [rng.uniform(0.5, 3.0, np.shape(a)) for a in case.args]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out = np.asarray(OPS[name].forward(*args, **case.attrs), dtype=float)
        seen.add(float(out.reshape(-1)[k]))
    return len(seen) == 1


@pytest.mark.parametrize("name", DIFFERENTIABLE)
@settings(max_examples=5, deadline=None)
@given(data=st.data())
def test_a_nan_flowing_in_is_never_hidden(name, data):
    case = data.draw(CASES[name](), label="case")
    shape = output_shape(name, case)
    incoming = np.ones(shape)
    if incoming.size == 0:
        return
    k = data.draw(st.integers(0, incoming.size - 1), label="entry")
    if _constant_entry(name, case, k):
        return  # e.g. a zero that diag or pad writes: no input reaches it
    incoming.flat[k] = np.nan
    grads = _gradients(name, case.args, case.attrs, incoming)
    assert any(g is not None and np.isnan(g).any() for g in grads), (
        f"{name}: a NaN in the incoming gradient vanished from every input's gradient"
    )


@pytest.mark.parametrize(("name", "which"), ELEMENTWISE, ids=lambda v: str(v))
@settings(max_examples=5, deadline=None)
@given(data=st.data())
def test_a_nan_input_gives_a_nan_gradient_where_the_rule_reads_it(name, which, data):
    case = data.draw(CASES[name](), label="case")
    args = [np.array(a, dtype=np.float64, copy=True) for a in case.args]
    out_shape = output_shape(name, case)
    if args[which].size == 0 or args[which].shape != out_shape:
        args[which] = np.array(np.broadcast_to(args[which], out_shape), copy=True)
        case_args = args
    else:
        case_args = args
    k = data.draw(st.integers(0, case_args[which].size - 1), label="entry")
    if name == "pow" and which == 0:
        exponent = np.broadcast_to(case_args[1], case_args[0].shape).flat[k]
        assume(exponent not in (0.0, 1.0))  # a^0 and a^1: slopes 0 and 1 whatever a is
    if name == "pow" and which == 1:
        base = np.broadcast_to(case_args[0], case_args[1].shape).flat[k]
        # 1^b is 1 whatever b is (IEEE 754 even gives pow(1, nan) = 1), so its slope in b,
        # 1^b * log(1), is 0: the NaN exponent is not read, as in PyTorch
        assume(base != 1.0)
    case_args[which].flat[k] = np.nan
    try:
        grads = _gradients(name, case_args, case.attrs, np.ones(out_shape))
    except cr.ChainruleError:
        return  # an op that refuses a NaN input (said in one error) hides nothing
    assert np.isnan(grads[which].flat[k]), (
        f"{name}: input {which} is NaN at entry {k}, but its gradient there is "
        f"{grads[which].flat[k]} (inputs {case_args!r})"
    )


@pytest.mark.parametrize(
    ("function", "nan_entry"),
    [
        (lambda x: x.relu(), 0),
        (lambda x: cr.maximum(x, cr.tensor([0.0, 0.0, 0.0])), 0),
        (lambda x: cr.minimum(x, cr.tensor([0.0, 0.0, 0.0])), 0),
        (lambda x: x.clip(0.0, 1.0), 0),
        (lambda x: abs(x), 0),
        (lambda x: x.max(), 0),
        (lambda x: x.min(), 0),
        (lambda x: cr.floor(x), 0),
        (lambda x: cr.sign(x), 0),
    ],
    ids=["relu", "maximum", "minimum", "clip", "abs", "max", "min", "floor", "sign"],
)
def test_the_issues_examples_nan_input(function, nan_entry):
    x = cr.tensor([np.nan, 0.5, -1.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        function(x).sum().backward()
    assert np.isnan(x.grad[nan_entry])


@pytest.mark.parametrize(
    "function",
    [
        lambda x: x.relu(),
        lambda x: cr.maximum(x, cr.tensor([1.0, 1.0])),
        lambda x: x.clip(0.0, 1.0),
        lambda x: cr.where(np.array([True, False]), x, cr.tensor([0.0, 0.0])),
    ],
    ids=["relu", "maximum", "clip", "where"],
)
def test_a_nan_gradient_is_not_zeroed_where_the_op_passes_nothing(function):
    # Each op passes nothing to one of the entries (relu at -0.5, the maximum and clip
    # at one of them, where at its unchosen one); PyTorch answers 0 there, NaN * 0 is NaN.
    x = cr.tensor([-0.5, 2.0], requires_grad=True)
    out = function(x)
    out.backward(gradient=np.array([np.nan, np.nan]))
    assert np.isnan(x.grad).all()


def test_finite_inputs_keep_their_gradients():
    # The rule changes nothing where there is no NaN: relu, maximum and clip as before.
    x = cr.tensor([-1.0, 0.5, 2.0], requires_grad=True)
    (x.relu() + cr.maximum(x, cr.tensor(0.0)) + x.clip(0.0, 1.0)).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 3.0, 2.0])


def test_float32_stays_float32_with_a_nan():
    x = cr.Tensor(np.array([np.nan, 1.0], dtype=np.float32), requires_grad=True)
    x.relu().sum().backward()
    assert x.grad.dtype == np.float32 and np.isnan(x.grad[0]) and x.grad[1] == 1
