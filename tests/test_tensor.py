"""The Tensor API, backward, higher derivatives, grad/check_grads, stability and errors."""

from __future__ import annotations

import copy
import dataclasses
import gc
import threading
import warnings
import weakref

import numpy as np
import pytest
from seed import DOSAGE, FITTED, OBSERVED

import chainrule as cr
from chainrule import (
    ChainruleError,
    DomainError,
    GradientCheckError,
    GraphError,
    ShapeError,
    Tensor,
)
from chainrule.ops import OPS
from chainrule.tensor import apply

# ---------------------------------------------------------------------------------------
# The Tensor API
# ---------------------------------------------------------------------------------------


def test_array_facts():
    t = Tensor([[1, 2, 3], [4, 5, 6]], name="t")
    assert isinstance(t.data, np.ndarray)
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and len(t) == 2
    assert t.dtype == np.float64
    assert t.grad is None and t.requires_grad is False and t.name == "t"
    assert t.op is None and t.inputs == () and t.attrs == {} and t.is_leaf


def test_item_and_numpy():
    assert Tensor([[2.5]]).item() == 2.5
    assert isinstance(Tensor(3).item(), float)
    with pytest.raises(ShapeError, match="item"):
        Tensor([1.0, 2.0]).item()
    t = Tensor([1.0, 2.0])
    assert t.numpy() is t.data
    assert np.asarray(t) is t.data


def test_iteration_truth_and_numpy_integers_like_numpy():
    x = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    rows = list(x)
    assert [r.shape for r in rows] == [(2,), (2,)]
    (rows[0] * rows[1]).sum().backward()  # the rows stay in the graph
    np.testing.assert_array_equal(x.grad, [[3.0, 4.0], [1.0, 2.0]])
    assert not Tensor(0.0) and Tensor([2.0])
    with pytest.raises(ValueError, match="ambiguous"):
        bool(Tensor([1.0, 2.0]))
    assert x.reshape(np.int64(4)).shape == (4,)
    assert x.transpose(np.int64(1), np.int64(0)).shape == (2, 2)


def test_equality_is_elementwise_like_numpy_but_hashing_is_by_identity():
    x = Tensor([1.0, 2.0, 1.0], requires_grad=True)
    eq, ne = x == 1.0, x != 1.0
    assert type(eq) is np.ndarray and eq.dtype == bool
    np.testing.assert_array_equal(eq, [True, False, True])
    np.testing.assert_array_equal(ne, [False, True, False])
    np.testing.assert_array_equal(x == Tensor([1.0, 0.0, 0.0]), [True, False, False])
    np.testing.assert_array_equal(np.array([2.0, 2.0, 2.0]) == x, [False, True, False])
    np.testing.assert_array_equal(x == np.array([[1.0], [2.0]]), [[1, 0, 1], [0, 1, 0]])
    # the review's case: the mask picks the ones instead of a silent False (all zeros)
    np.testing.assert_array_equal(cr.where(x == 1.0, x, 0.0).data, [1.0, 0.0, 1.0])
    # still keys by identity: equal values are different keys, the same tensor is one key
    y = Tensor([1.0, 2.0, 1.0])
    assert hash(x) == object.__hash__(x) and len({x, y, x}) == 2
    assert {x: "x", y: "y"}[y] == "y"
    # a one-element tensor compares like a number (a 0-d bool array)
    assert bool(Tensor(2.0) == 2.0) and not bool(Tensor(2.0) != 2.0)


def test_swapaxes_takes_numpys_two_axes():
    data = np.arange(24.0).reshape(2, 3, 4)
    x = Tensor(data, requires_grad=True)
    for axes in [(0, 2), (2, 0), (-1, -2), (1, 1), (0, -1)]:
        np.testing.assert_array_equal(x.swapaxes(*axes).data, data.swapaxes(*axes))
        np.testing.assert_array_equal(cr.swapaxes(x, *axes).data, np.swapaxes(data, *axes))
    weights = np.arange(24.0).reshape(4, 3, 2)
    (x.swapaxes(0, 2) * weights).sum().backward()
    np.testing.assert_array_equal(x.grad, weights.swapaxes(0, 2))
    cr.check_grads(lambda t: (t.swapaxes(0, 1) ** 2 * weights[0]).sum(), np.ones((2, 3)))
    with pytest.raises(ShapeError, match=r"swapaxes: .*\(2, 3, 4\)"):
        x.swapaxes(0, 3)
    with pytest.raises(TypeError):
        x.swapaxes()  # numpy's signature: both axes are needed


def test_detach_shares_data_but_leaves_the_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    d = y.detach()
    assert np.shares_memory(d.data, y.data)
    assert d.requires_grad is False and d.op is None and d.inputs == ()


def test_results_of_ops_are_ndarrays_even_when_0d():
    x = Tensor(2.0, requires_grad=True)
    y = (x * 3).exp().sum()
    assert type(y.data) is np.ndarray and y.shape == ()
    y.backward()
    assert type(x.grad) is np.ndarray and x.grad.shape == ()


def test_numpy_operands_on_the_left_give_tensors():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = np.float64(2.0) * x + np.ones(2)
    assert isinstance(y, Tensor)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


def test_float64_by_default_and_ints_converted():
    assert Tensor(1).dtype == np.float64
    assert Tensor([1, 2]).dtype == np.float64
    assert Tensor(np.arange(3, dtype=np.int32)).dtype == np.float64
    assert Tensor([True, False]).dtype == np.float64
    assert cr.tensor([1, 2]).data.tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    "data, words",
    [
        (None, ["Tensor", "None"]),
        ([1.0, None], ["Tensor", "None"]),
        (1 + 2j, ["Tensor", "complex"]),
        (np.array([1.0, 2.0j]), ["Tensor", "complex"]),
        ("abc", ["Tensor", "str"]),
        ([1.0, "2"], ["Tensor", "str"]),
        ({"a": 1.0}, ["Tensor", "dict"]),
        ([[1.0, 2.0], [3.0]], ["Tensor", "ragged list"]),
    ],
    ids=["None", "None inside", "complex", "complex array", "str", "str inside", "dict", "ragged"],
)
def test_data_that_is_not_real_numbers_is_refused(data, words):
    # numpy would give NaN for None, drop the imaginary part with a warning, or fail with
    # an error of its own: each is one ChainruleError naming Tensor and the type.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for dtype in (None, "float32"):
            with pytest.raises(ChainruleError) as info:
                Tensor(data, dtype=dtype)
            for word in words:
                assert word in str(info.value)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda x: x + None, ["add", "None"]),
        (lambda x: None * x, ["mul", "None"]),
        (lambda x: x - "a", ["sub", "str"]),
        (lambda x: x / np.array([1j, 1.0]), ["div", "complex"]),
        (lambda x: x @ [[1.0, 2.0], [3.0]], ["matmul", "ragged"]),
        (lambda x: cr.maximum(x, [1.0, None]), ["maximum", "None"]),
    ],
)
def test_operands_that_are_not_real_numbers_are_refused_by_the_op(make, words):
    with pytest.raises(ChainruleError) as info:
        make(Tensor([1.0, 2.0], requires_grad=True))
    for word in words:
        assert word in str(info.value)


def test_float32_on_request():
    assert Tensor([1, 2], dtype="float32").dtype == np.float32
    assert Tensor(np.ones(2, dtype=np.float32)).dtype == np.float32
    with pytest.raises(ChainruleError, match="float64 or float32"):
        Tensor([1, 2], dtype="int32")


def test_float32_stays_float32_through_ops_with_python_scalars():
    x = Tensor([0.5, 1.5, 2.5], dtype="float32", requires_grad=True)
    steps = [
        lambda t: t * 2 + 1.5,
        lambda t: 3 - t / 4,
        lambda t: 2.0**t,
        lambda t: t**2,
        lambda t: t.exp() + t.log() + t.sqrt(),
        lambda t: t.tanh() + t.sigmoid() + t.softplus() + t.relu(),
        lambda t: t.clip(0.6, 2.0) + t.maximum(1.0) + t.minimum(1) + abs(-t),
        lambda t: t.softmax() + t.log_softmax() + t.mean() + t.max() + t.min(),
        lambda t: t.reshape(3, 1).T.sum(axis=0) + t[[0, 0, 2]],
        lambda t: cr.where(t > 1, t, 0.0) + cr.concatenate([t[:1], t[1:]]),
        lambda t: cr.stack([t, t]).sum(axis=0) + t @ np.ones((3, 3), dtype=np.float32),
    ]
    y = x
    for step in steps:
        y = step(y)
        assert y.dtype == np.float32, step
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_zero_grad_and_accumulation():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])
    (x * x).sum().backward()  # a new graph: gradients add up
    np.testing.assert_array_equal(x.grad, [4.0, 8.0])
    x.zero_grad()
    assert x.grad is None
    (3 * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_each_leaf_owns_its_gradient():
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = Tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()  # add passes one array to both inputs
    assert a.grad is not b.grad and a.grad.flags.writeable
    a.grad *= 10
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])


def test_intermediate_gradients_only_with_retain_grad():
    x = Tensor([1.0, -2.0], requires_grad=True)
    h = (x * 3).retain_grad()
    k = h + 1
    (h * k).sum().backward()
    np.testing.assert_allclose(h.grad, 2 * h.data + 1)  # d(h (h + 1))/dh
    assert k.grad is None
    np.testing.assert_allclose(x.grad, 3 * (2 * h.data + 1))


def test_diamond_graph():
    # y feeds z and out: z's share of y's gradient must arrive before y's rule runs.
    x = Tensor(1.0, requires_grad=True)
    y = x * 2
    z = y * 3
    (y + z).backward()
    assert x.grad == 8.0


def test_a_node_waits_for_every_use_made_later_in_the_program():
    # x's uses come in an order unlike the graph's depth: a deep path through u, and a
    # late direct use. Each gradient must be complete before its rule runs.
    x = Tensor([0.5, -1.0], requires_grad=True)
    u = (x * 2).tanh().exp()
    v = x * u  # made after u, uses x again
    w = (u + v * x).sum()  # uses x a third time, and u again
    w.backward()
    xs, us = np.array([0.5, -1.0]), np.exp(np.tanh(np.array([0.5, -1.0]) * 2))
    du_dx = us * (1 - np.tanh(2 * xs) ** 2) * 2
    # w = u + x^2 u: dw/dx = du/dx (1 + x^2) + 2 x u
    np.testing.assert_allclose(x.grad, du_dx * (1 + xs**2) + 2 * xs * us, rtol=1e-12)


def test_copies_of_a_graph_keep_its_order():
    x = Tensor(3.0, requires_grad=True)
    y = x * x
    y2 = copy.copy(y)  # a new node, made later, on the same x
    (y2 * 2 + y).backward()
    assert x.grad == 18.0  # d(3 x^2)/dx = 6 x
    z = copy.deepcopy((x * x) * 2)  # a copy of the whole graph, its leaves included
    z.backward()
    assert x.grad == 18.0  # the copy's leaf got the gradient, not x


def test_a_sweep_that_fails_changes_no_gradient():
    a = Tensor(2.0, requires_grad=True)
    b = Tensor([1.0, 2.0], requires_grad=True)
    loss = a * 2 + (b * 3).sum()
    cr.inplace(b)[...] = 0.0  # the graph is now out of date at b * 3
    with pytest.raises(GraphError, match="changed in place"):
        loss.backward()
    assert a.grad is None and b.grad is None  # a's gradient was found, but not stored


def test_gradients_without_touching_grad():
    x = Tensor(3.0, requires_grad=True)
    unused = Tensor([1.0, 2.0], requires_grad=True)
    gx, gu = cr.gradients(x * x, [x, unused])
    assert gx == 6.0 and x.grad is None
    np.testing.assert_array_equal(gu, [0.0, 0.0])


# ---------------------------------------------------------------------------------------
# backward: the graph, its seed and its lifetime
# ---------------------------------------------------------------------------------------


def test_second_backward_through_a_freed_graph_fails_clearly():
    x = Tensor(2.0, requires_grad=True)
    y = (x * x).tanh()
    y.backward()
    with pytest.raises(GraphError, match="freed") as info:
        y.backward()
    assert "retain_graph=True" in str(info.value)


def test_retain_graph_allows_a_second_backward():
    x = Tensor(2.0, requires_grad=True)
    y = x * x
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad == 8.0


def test_backward_of_a_non_scalar_needs_a_gradient():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    with pytest.raises(GraphError, match=r"shape \(3,\)"):
        y.backward()
    with pytest.raises(ShapeError, match="gradient of shape"):
        y.backward(np.ones(2))
    y.backward(np.array([1.0, 0.0, -1.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 0.0, -2.0])


def test_backward_of_a_constant_fails_clearly():
    with pytest.raises(GraphError, match="requires_grad=True"):
        (Tensor(2.0) * 3).backward()


def test_no_grad_records_nothing():
    x = Tensor([1.0, 2.0], requires_grad=True)
    assert cr.is_grad_enabled()
    with cr.no_grad():
        assert not cr.is_grad_enabled()
        y = (x * 2).exp().sum()
    assert cr.is_grad_enabled()
    assert y.requires_grad is False and y.op is None and y.inputs == ()
    with pytest.raises(RuntimeError), cr.no_grad():
        raise RuntimeError("the flag is restored after an error too")
    assert cr.is_grad_enabled()


def test_no_grad_holds_for_its_own_thread_only():
    # A web server runs handlers in threads: one handler's no_grad must not stop another's
    # recording.
    x = Tensor([1.0, 2.0], requires_grad=True)
    entered, resume = threading.Event(), threading.Event()
    seen = {}

    def handler():
        with cr.no_grad():
            entered.set()
            resume.wait(timeout=10)
            seen["inside"] = (x * 2).requires_grad, cr.is_grad_enabled()
        seen["after"] = cr.is_grad_enabled()

    worker = threading.Thread(target=handler)
    worker.start()
    assert entered.wait(timeout=10)
    assert cr.is_grad_enabled() and (x * 2).requires_grad  # this thread still records
    resume.set()
    worker.join()
    assert seen == {"inside": (False, False), "after": True}
    with cr.no_grad():  # and a thread started inside no_grad records
        fresh = threading.Thread(target=lambda: seen.update(fresh=(x * 2).requires_grad))
        fresh.start()
        fresh.join()
    assert seen["fresh"] is True


def test_backward_in_one_thread_leaves_recording_on_in_another():
    # backward() turns recording off while its rules run (on with create_graph): for its
    # own thread only.
    in_backward, resume = threading.Event(), threading.Event()

    def waiting_rule(g, out, x):
        in_backward.set()
        resume.wait(timeout=10)
        return g

    waiting = dataclasses.replace(
        OPS["neg"], name="wait", forward=np.positive, rules=(waiting_rule,)
    )
    x = Tensor([1.0, 2.0], requires_grad=True)
    worker = threading.Thread(target=lambda: apply(waiting, x).sum().backward())
    worker.start()
    try:
        assert in_backward.wait(timeout=10)
        assert cr.is_grad_enabled() and (x * 2).requires_grad
    finally:
        resume.set()
        worker.join()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])


def test_a_chain_of_100000_ops():
    x = Tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.00001
    y.backward()
    assert x.grad == pytest.approx(1.00001**100_000, rel=1e-9)


def test_a_deep_graph_can_be_dropped_without_backward():
    x = Tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y + 1.0
    del y  # deallocating a deep chain must not overflow the stack


def test_graph_is_released_after_backward_without_garbage_collection():
    gc.disable()  # only reference counting: a reference cycle would keep the arrays alive
    try:
        a = Tensor(np.random.default_rng(0).standard_normal((20, 20)), requires_grad=True)
        hidden = (a @ a).tanh()
        node, data = weakref.ref(hidden), weakref.ref(hidden.data)
        loss = (hidden * hidden).sum()
        del hidden
        loss.backward()
        assert node() is None and data() is None  # freed by backward itself

        hidden = (a @ a).tanh()
        node, data = weakref.ref(hidden), weakref.ref(hidden.data)
        loss = (hidden * hidden).sum()
        del hidden
        loss.backward(retain_graph=True)
        assert node() is not None  # retained, as asked
        del loss  # the caller drops the output: everything goes
        assert node() is None and data() is None
    finally:
        gc.enable()


def test_gradients_reach_matmul_with_unit_strides(monkeypatch):
    # A stride-0 (broadcast) operand would push np.matmul off BLAS onto a loop that is
    # orders of magnitude slower for large matrices.
    strides = []
    real_matmul = np.matmul

    def spy(x, y):
        strides.extend([x.strides, y.strides])
        return real_matmul(x, y)

    monkeypatch.setattr(np, "matmul", spy)
    a = Tensor(np.ones((3, 3)), requires_grad=True)
    b = Tensor(np.ones((3, 3)), requires_grad=True)
    (a @ b).sum().backward()  # sum's gradient is the 0-d seed broadcast to (3, 3)
    (a @ b).backward(np.broadcast_to(1.0, (3, 3)))  # a caller's stride-0 gradient
    (a @ b).mean(axis=0).sum().backward()
    assert len(strides) == 18
    assert all(0 not in s for s in strides), strides


# ---------------------------------------------------------------------------------------
# Higher derivatives
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, x, closed_form",
    [
        ("tanh", [-1.5, 0.3, 2.0], lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2)),
        ("softplus", [-2.0, 0.1, 3.0], lambda x: np.exp(-x) / (1 + np.exp(-x)) ** 2),
        (
            "sigmoid",
            [-2.0, 0.1, 3.0],
            lambda x: np.exp(-x) * (np.exp(-x) - 1) / (1 + np.exp(-x)) ** 3,
        ),
        ("exp", [-1.0, 0.0, 1.5], np.exp),
        ("log", [0.5, 1.0, 3.0], lambda x: -1 / x**2),
    ],
)
def test_second_derivative_matches_finite_differences_of_the_first(name, x, closed_form):
    x = np.array(x)
    first = cr.grad(lambda t: getattr(cr, name)(t).sum())
    second = cr.grad(lambda t: first(t).sum())  # elementwise: the Hessian's diagonal
    eps = 1e-5
    numeric = (first(x + eps) - first(x - eps)) / (2 * eps)
    np.testing.assert_allclose(second(x), numeric, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(second(x), closed_form(x), rtol=1e-12)


def hessian_vector(f, xs, vs):
    """The engine's H v: the gradient of (grad f . v), built with create_graph."""
    ts = [Tensor(x, requires_grad=True) for x in xs]
    grads = cr.gradients(f(*ts), ts, create_graph=True)
    along = sum((g * v).sum() for g, v in zip(grads, vs, strict=True))
    return cr.gradients(along, ts)


def finite_hessian_vector(f, xs, vs, eps=1e-5):
    """H v by central differences of the first derivative along v."""
    g = cr.grad(f, argnums=tuple(range(len(xs))))
    plus = g(*[x + eps * v for x, v in zip(xs, vs, strict=True)])
    minus = g(*[x - eps * v for x, v in zip(xs, vs, strict=True)])
    return [(p - m) / (2 * eps) for p, m in zip(plus, minus, strict=True)]


def test_second_derivatives_of_pow_in_base_and_exponent():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.5, 2.0, 4), rng.uniform(-2.0, 2.0, 4)
    vs = [rng.standard_normal(4), rng.standard_normal(4)]

    def f(a, b):
        return (a**b).sum() + (a**3).sum()

    for ours, numeric in zip(
        hessian_vector(f, [a, b], vs), finite_hessian_vector(f, [a, b], vs), strict=True
    ):
        np.testing.assert_allclose(ours, numeric, rtol=1e-6, atol=1e-8)


def test_second_derivatives_of_a_square_in_its_exponent():
    # The square's first derivative skips the power a^1 (the same numbers): when the
    # exponent itself is differentiated again, the rule must still record b a^(b-1).
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0.5, 2.0, 3), np.array(2.0)
    vs = [rng.standard_normal(3), np.array(0.7)]

    def f(a, b):
        return (a**b).sum()

    for ours, numeric in zip(
        hessian_vector(f, [a, b], vs), finite_hessian_vector(f, [a, b], vs), strict=True
    ):
        np.testing.assert_allclose(ours, numeric, rtol=1e-6, atol=1e-8)


def test_the_square_slope_is_the_power_rule_to_the_last_bit():
    from chainrule.ops import OPS

    rng = np.random.default_rng(4)
    for dtype in (np.float64, np.float32):
        a = (rng.standard_normal(50) * 10.0 ** rng.integers(-30, 30, 50)).astype(dtype)
        a[:4] = [0.0, -0.0, np.inf, np.nan]
        g, b = rng.standard_normal(50).astype(dtype), np.array(2.0, dtype)
        with np.errstate(all="ignore"):
            general = g * b * a ** (b - 1)
            rule = OPS["pow"].rules[0](g, a**b, a, b)
        assert rule.dtype == dtype
        np.testing.assert_array_equal(rule.view(np.uint8), general.view(np.uint8))


def test_hessian_vector_product_against_an_explicit_hessian():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((3, 3))
    x = rng.standard_normal(3)

    def f(x):  # 1/2 x^T A x + sum(x^3)
        return 0.5 * (x @ (Tensor(a) @ x)) + (x**3).sum()

    hessian = (a + a.T) / 2 + np.diag(6 * x)
    columns = [hessian_vector(f, [x], [e])[0] for e in np.eye(3)]
    np.testing.assert_allclose(np.stack(columns, axis=1), hessian, rtol=1e-12, atol=1e-12)
    v = rng.standard_normal(3)
    np.testing.assert_allclose(hessian_vector(f, [x], [v])[0], hessian @ v, rtol=1e-12)


def seed_ssr(b3):
    """The seed's sum of squared residuals as a function of b3 (the other weights fitted)."""
    dosage, observed = cr.tensor(DOSAGE), cr.tensor(OBSERVED)
    w1, b1, w2, b2, w3, w4 = (FITTED[name] for name in ("w1", "b1", "w2", "b2", "w3", "w4"))
    predicted = w3 * cr.softplus(w1 * dosage + b1) + w4 * cr.softplus(w2 * dosage + b2) + b3
    return ((observed - predicted) ** 2).sum()


def test_seed_ssr_and_its_derivatives_in_b3():
    assert seed_ssr(Tensor(0.0)).item() == pytest.approx(20.4235976776, abs=1e-9)
    assert cr.grad(seed_ssr)(0.0) == pytest.approx(-15.6551083806, abs=1e-9)
    assert cr.grad(cr.grad(seed_ssr))(0.0) == 6.0  # SSR is 3 (b3 - b3*)^2 + const: exactly 6
    assert cr.grad(cr.grad(seed_ssr))(2.5) == 6.0


def test_grad_argnums_and_nesting():
    def f(a, b):
        return (a * b**2).sum()

    a, b = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    np.testing.assert_array_equal(cr.grad(f)(a, b), b**2)
    np.testing.assert_array_equal(cr.grad(f, argnums=1)(a, b), 2 * a * b)
    ga, gb = cr.grad(f, argnums=(0, 1))(a, b)
    np.testing.assert_array_equal(ga, b**2)
    np.testing.assert_array_equal(gb, 2 * a * b)

    def cube(x):
        return x**3

    assert cr.grad(cube)(2.0) == 12.0
    assert cr.grad(cr.grad(cube))(2.0) == 12.0
    assert cr.grad(cr.grad(cr.grad(cube)))(2.0) == 6.0
    assert cr.grad(cr.grad(lambda x: 3 * x))(2.0) == 0.0  # the first derivative is constant
    with pytest.raises(ShapeError, match="one-element"):
        cr.grad(lambda x: x * 2)(np.ones(2))
    assert cr.grad(f, argnums=-1)(a, b).tolist() == (2 * a * b).tolist()


def test_grad_differentiates_inside_no_grad_too():
    # It used to record nothing there and report a gradient of 0.
    def cube(x):
        return (x**3).sum()

    with cr.no_grad():
        assert cr.grad(cube)(2.0) == 12.0
        g = cr.grad(cube)(Tensor(2.0, requires_grad=True))  # no graph for the result
        assert type(g) is np.ndarray and g == 12.0
        assert not cr.is_grad_enabled()
    # check_grads evaluates f under no_grad for its finite differences: f may use grad
    cr.check_grads(lambda x: cr.grad(cube)(x).sum(), [0.5, -1.5])


@pytest.mark.parametrize(
    "argnums, args, words",
    [
        (1, (2.0,), ["grad", "argnums 1", "1 argument"]),
        ((0, 2), (2.0, 3.0), ["grad", "argnums (0, 2)", "argument 2", "2 argument"]),
        (-3, (2.0, 3.0), ["grad", "argument -3", "2 argument"]),
    ],
)
def test_grad_argnums_out_of_range(argnums, args, words):
    with pytest.raises(ChainruleError) as info:
        cr.grad(lambda *xs: sum(xs, Tensor(0.0)), argnums=argnums)(*args)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("argnums", [1.0, "0", None, [0, 1.5], True])
def test_grad_argnums_must_be_whole_numbers(argnums):
    with pytest.raises(ChainruleError, match="grad: argnums must be an int or a tuple"):
        cr.grad(lambda x: x, argnums=argnums)


# ---------------------------------------------------------------------------------------
# check_grads
# ---------------------------------------------------------------------------------------


def test_check_grads_passes_on_correct_functions():
    cr.check_grads(lambda x: (x.tanh() * x).sum(), [0.3, -1.2])
    cr.check_grads(
        lambda w, x: (x @ w).softplus().mean(), np.ones((3, 2)), np.arange(6.0).reshape(2, 3)
    )


def test_check_grads_catches_a_wrong_rule():
    def wrong_tanh_rule(g, out, x):
        return g * out  # should be g * (1 - out^2)

    wrong = dataclasses.replace(OPS["tanh"], rules=(wrong_tanh_rule,))
    with pytest.raises(GradientCheckError) as info:
        cr.check_grads(lambda x: apply(wrong, x).sum(), [0.3, -1.2])
    message = str(info.value)
    assert "argument 0 (shape (2,))" in message
    assert "engine" in message and "finite differences" in message
    assert isinstance(info.value, ChainruleError)


def test_check_grads_catches_a_gradient_broken_by_detach():
    with pytest.raises(GradientCheckError, match="argument 1"):
        cr.check_grads(lambda a, x: (a * x * x.detach()).sum(), [1.0, 2.0], [0.5, -1.5])


# ---------------------------------------------------------------------------------------
# Numerical stability
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["softplus", "sigmoid", "log_softmax", "tanh"])
def test_stable_at_plus_minus_1000(name):
    x = Tensor([-1000.0, 0.0, 1000.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = getattr(cr, name)(x)
        (y * np.array([1.0, 2.0, 3.0])).sum().backward()
        second = cr.grad(lambda t: cr.grad(lambda u: getattr(cr, name)(u).sum())(t).sum())
        second_values = second(x.data)
    assert np.all(np.isfinite(y.data)) and np.all(np.isfinite(x.grad))
    assert np.all(np.isfinite(second_values))


def test_values_at_plus_minus_1000():
    x = Tensor([-1000.0, 1000.0])
    np.testing.assert_array_equal(cr.softplus(x).data, [0.0, 1000.0])
    np.testing.assert_array_equal(cr.sigmoid(x).data, [0.0, 1.0])
    np.testing.assert_array_equal(cr.log_softmax(x).data, [-2000.0, 0.0])


def test_log_of_zero_is_minus_infinity_like_numpy():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = cr.log(Tensor([0.0, 1.0]))
    with np.errstate(divide="ignore"):
        np.testing.assert_array_equal(y.data, np.log([0.0, 1.0]))
    assert y.data[0] == -np.inf


# ---------------------------------------------------------------------------------------
# Errors name the op and the shapes
# ---------------------------------------------------------------------------------------


def test_shapes_that_do_not_broadcast():
    with pytest.raises(ShapeError) as info:
        Tensor(np.ones(3)) + Tensor(np.ones(4))
    assert "add" in str(info.value) and "(3,)" in str(info.value) and "(4,)" in str(info.value)
    with pytest.raises(ShapeError, match=r"mul: shapes \(2, 3\) and \(2,\)"):
        Tensor(np.ones((2, 3))) * np.ones(2)


def test_matmul_shape_mismatch():
    with pytest.raises(ShapeError) as info:
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))
    message = str(info.value)
    assert "matmul" in message and "(2, 3)" in message and "(4, 5)" in message


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda x: x.reshape(4, 2), ["reshape", "(2, 3)", "(4, 2)"]),
        (lambda x: x.broadcast_to((3, 3)), ["broadcast_to", "(2, 3)", "(3, 3)"]),
        (lambda x: x.broadcast_to((3,)), ["broadcast_to", "(2, 3)", "(3,)"]),
        (lambda x: cr.concatenate([x, Tensor(np.ones((3, 2)))]), ["concatenate", "axis 0"]),
        (lambda x: cr.stack([x, Tensor(np.ones(3))]), ["stack", "(2, 3)", "(3,)"]),
        (lambda x: cr.where(np.ones(4, dtype=bool), x, 0.0), ["where", "(4,)", "(2, 3)"]),
        (lambda x: x[5], ["getitem", "(2, 3)"]),
        (lambda x: x.sum(axis=2), ["sum", "(2, 3)", "axis 2"]),
        (lambda x: x.mean(axis=(0, -3)), ["mean", "(2, 3)"]),
        (lambda x: x[:, 3:].max(), ["max", "(2, 0)"]),
        (lambda x: x.softmax(axis=-3), ["softmax", "(2, 3)"]),
        (lambda x: x.log_softmax(axis=2), ["log_softmax", "(2, 3)"]),
        (lambda x: x.transpose((0, 0)), ["transpose", "(0, 0)", "(2, 3)", "permutation"]),
        (lambda x: cr.transpose(x, (1, 2)), ["transpose", "(1, 2)", "(2, 3)"]),
        (lambda x: x.transpose(1.5), ["transpose", "whole numbers", "1.5"]),
        (lambda x: x.reshape(2.0), ["reshape", "whole numbers", "2.0"]),
        (lambda x: x.reshape(3, 2.0), ["reshape", "whole numbers", "2.0"]),
        (lambda x: cr.reshape(x, (3, 2.5)), ["reshape", "whole numbers", "2.5"]),
        (lambda x: x.broadcast_to(3.0), ["broadcast_to", "whole numbers", "3.0"]),
        (lambda x: x.sum(axis=1.5), ["sum", "(2, 3)", "1.5"]),
        (lambda x: cr.concatenate([]), ["concatenate", "at least one", "empty"]),
        (lambda x: cr.stack([]), ["stack", "at least one", "empty"]),
    ],
)
def test_other_shape_errors_name_the_op_and_the_shapes(make, words):
    with pytest.raises(ShapeError) as info:
        make(Tensor(np.ones((2, 3)), requires_grad=True))
    for word in words:
        assert word in str(info.value)
    error = info.value  # one error: no numpy error chained under it
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


def test_shapes_and_axes_in_numpys_spellings():
    x = Tensor(np.arange(6.0), requires_grad=True)
    assert x.reshape(2, 3).shape == x.reshape((2, 3)).shape == x.reshape([2, 3]).shape == (2, 3)
    assert x.reshape(np.array([3, 2])).shape == cr.reshape(x, (3, -1)).shape == (3, 2)
    assert cr.reshape(x, 6).shape == (6,) and cr.broadcast_to(Tensor(1.0), 3).shape == (3,)
    y = x.reshape(1, 2, 3)
    assert y.transpose().shape == y.transpose(None).shape == y.T.shape == (3, 2, 1)
    assert y.transpose(2, 0, 1).shape == y.transpose([2, 0, 1]).shape == (3, 1, 2)


def test_slices_with_negative_steps():
    cr.check_grads(lambda x: (x[::-1] * np.arange(5.0)).sum(), np.linspace(-1, 1, 5))
    cr.check_grads(lambda x: (x[::-2, 1:] ** 2).sum(), np.arange(12.0).reshape(4, 3))


def test_a_tensor_index_must_hold_whole_numbers():
    x = Tensor([10.0, 20.0, 30.0], requires_grad=True)
    for index in ([0.9, 2.2], [0.0, np.nan], [np.inf]):
        with pytest.raises(ShapeError, match="getitem: .*whole numbers"):
            x[Tensor(index)]  # once cast to [0, 2] without a word
    with pytest.raises(ShapeError, match="getitem: .*whole numbers"):
        Tensor(np.ones((2, 3)))[:, Tensor([0.5])]  # inside a tuple of indices too
    picked = x[Tensor([2.0, 0.0, 2.0])]  # whole numbers are positions (labels, say)
    np.testing.assert_array_equal(picked.data, [30.0, 10.0, 30.0])
    picked.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 0.0, 2.0])
    assert x[Tensor(1.0)].item() == 20.0


def test_masks_are_boolean_arrays_and_a_float_mask_is_not_taken_for_positions():
    x = Tensor([10.0, 20.0, 30.0], requires_grad=True)
    np.testing.assert_array_equal(x[x > 15].data, [20.0, 30.0])
    np.testing.assert_array_equal(x[np.array([True, False, True])].data, [10.0, 30.0])
    np.testing.assert_array_equal(x[[True, False, True]].data, [10.0, 30.0])
    x[x != 20].sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 0.0, 1.0])
    # 0/1 floats: as positions they would pick [20, 10, 20]; as a mask [10, 30]. Refused.
    with pytest.raises(ShapeError, match="getitem: .*0s and 1s.*ambiguous"):
        x[Tensor([1.0, 0.0, 1.0])]


def test_negative_base_to_a_non_integer_power():
    with pytest.raises(DomainError, match="pow"):
        Tensor([-2.0, 1.0]) ** 0.5
    assert (Tensor([-2.0]) ** 3).data[0] == -8.0  # an integer power is fine
    np.testing.assert_array_equal((Tensor([-2.0, 4.0]) ** Tensor([2.0, 0.5])).data, [4.0, 2.0])
    with pytest.raises(DomainError, match=r"e\.g\. -2 \*\* 0\.5"):
        Tensor([[-2.0], [4.0]]) ** Tensor([2.0, 0.5])  # broadcast: -2 meets 0.5


def test_number_constants_are_shared_read_only_leaves():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    first, second = x * 2.5, x * 2.5
    constant = first.inputs[1]
    assert constant is second.inputs[1]  # made once, reused by every step of a loop
    assert not constant.requires_grad and constant.op is None
    assert not constant.data.flags.writeable  # shared, so nobody may change it
    # float32 operands get their own float32 constant
    assert (cr.tensor([1.0], dtype="float32", requires_grad=True) * 2.5).inputs[
        1
    ].dtype == np.float32
    # 0.0 and -0.0 compare equal but are different numbers: they are not shared
    assert np.signbit((cr.tensor([1.0]) * -0.0).data[0])
    assert not np.signbit((cr.tensor([1.0]) * 0.0).data[0])
