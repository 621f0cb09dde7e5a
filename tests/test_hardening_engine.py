"""In-place changes after the forward pass, backward's gradient, anomaly mode."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule.errors import AnomalyError, ChainruleError, GraphError
from chainrule.formula import Formula
from chainrule.optim import GradientDescent

# -- tensor() copies; Tensor() is the zero-copy path -----------------------------------


def test_tensor_copies_the_callers_array():
    start = np.array([1.0, 2.0])
    x = cr.tensor(start, requires_grad=True)
    y = (x * x).sum()
    start[...] = 10.0  # the caller's array, not the tensor's
    y.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])
    view = start[::-1]
    assert not np.shares_memory(cr.tensor(view).data, start)
    assert np.shares_memory(cr.Tensor(start).data, start)  # documented zero-copy path


# -- in-place changes of saved inputs ---------------------------------------------------


def test_a_leaf_changed_through_data_is_refused_at_the_write():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    with pytest.raises(ValueError, match="read-only"):
        x.data[...] = 10.0
    y.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])  # the gradient is still right


def test_an_intermediates_data_cannot_be_changed_while_a_graph_needs_it():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    z = x * x
    y = (z * z).sum()
    with pytest.raises(ValueError, match="read-only"):
        z.data[0] = 0.0
    y.backward()
    np.testing.assert_array_equal(x.grad, 4 * x.data**3)


def test_an_input_whose_values_no_rule_reads_stays_writable_and_changes_nothing():
    # add, sub, neg, sum and mean read only their inputs' shapes (as PyTorch, which
    # checks only what an op saves): changing such an input cannot make a gradient wrong.
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    z = x * 3.0
    y = (z + 1.0).sum() - z.mean()
    z.data[0] = 100.0  # allowed: no rule of add, sum, mean or sub reads z's values
    y.backward()
    np.testing.assert_array_equal(x.grad, [1.5, 1.5])  # 3 * (1 - 1/2)


@pytest.mark.parametrize("how", ["inplace", "replace"])
def test_backward_through_a_changed_input_names_the_op(how):
    x = cr.tensor([1.0, 2.0], requires_grad=True, name="x")
    y = cr.exp(x * 3.0).sum()
    if how == "inplace":
        cr.inplace(x)[...] = 10.0
    else:
        x.data = np.array([10.0, 10.0])
    with pytest.raises(GraphError, match=r"an input 'x' of 'mul' \(shape \(2,\)\) was changed"):
        y.backward()


def test_an_optimizer_step_between_forward_and_backward_is_refused_and_training_works():
    w = cr.nn.Parameter([1.0, -1.0], name="w")
    optimizer = GradientDescent([w], lr=0.1)
    stale = (w * w).sum()
    (w * w).sum().backward()
    optimizer.step()
    with pytest.raises(GraphError, match="'w' of 'mul'"):
        stale.backward()
    for _ in range(3):  # the usual loop: forward, backward, step
        optimizer.zero_grad()
        (w * w).sum().backward()
        optimizer.step()
    np.testing.assert_allclose(w.data, [0.8**4, -(0.8**4)], rtol=1e-12)


def test_a_scalar_set_after_the_forward_pass_is_refused():
    model = Formula("y = w * x", inputs=["x"], values={"w": 2.0})
    out = model({"x": [1.0, 2.0]}).sum()
    model.scalar("w").set(5.0)
    with pytest.raises(GraphError, match="'w' of 'mul'"):
        out.backward()


# -- backward's gradient ------------------------------------------------------------------


@pytest.mark.parametrize(
    "gradient, problem",
    [
        ("ab", "got str"),
        (np.array([1 + 2j, 1.0]), "got complex"),
        (np.array([None, 1.0], dtype=object), "got None"),
        ([[1.0, 2.0], [3.0]], "ragged"),
        ([1.0], r"gradient of shape \(1,\) for a tensor of shape \(2,\)"),
        (np.zeros((1, 2)), r"gradient of shape \(1, 2\)"),
        ({"a": 1}, "got dict"),
    ],
)
def test_backward_refuses_a_gradient_that_is_not_a_real_array_of_the_shape(gradient, problem):
    y = cr.tensor([1.0, 2.0], requires_grad=True) * 2.0
    with pytest.raises(ChainruleError, match=problem):
        y.backward(gradient=gradient)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=2))
def test_a_real_gradient_of_the_right_shape_is_used(values):
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    (x * 3.0).backward(gradient=values)
    np.testing.assert_allclose(x.grad, 3.0 * np.array(values))


# -- anomaly mode -------------------------------------------------------------------------


def test_anomaly_mode_names_the_forward_op_and_where_it_was_made():
    x = cr.tensor([1.0, -1.0], requires_grad=True)
    with cr.detect_anomaly(), pytest.raises(AnomalyError) as info:
        cr.log(x)
    message = str(info.value)
    assert "the forward pass of 'log' made nan" in message
    assert "test_hardening_engine.py:" in message  # the line that made it
    with cr.detect_anomaly(), cr.no_grad():
        assert np.isnan(cr.log(x).data[1])  # nothing recorded, nothing checked


def test_anomaly_mode_names_the_backward_op_and_the_formula_line():
    model = Formula("z = w * x\nr = sqrt(z)\ny = r + 1", inputs=["x"], values={"w": 1.0})
    with cr.detect_anomaly():
        out = model({"x": [0.0, 4.0]}).sum()
        with pytest.raises(AnomalyError) as info:
            out.backward()
    message = str(info.value)
    assert "the backward pass of 'sqrt' made inf" in message
    assert "formula line 2: r = sqrt(z)" in message
    # Outside anomaly mode the same numbers go through, as before.
    out = model({"x": [0.0, 4.0]}).sum()
    out.backward()
    assert not np.isfinite(model.parameter("w").grad)  # inf * 0 = nan


def test_anomaly_mode_in_a_formula_forward_pass():
    model = Formula("a = w * x\ny = log(a)", inputs=["x"], values={"w": 1.0})
    with cr.detect_anomaly(), pytest.raises(AnomalyError, match=r"formula line 2: y = log\(a\)"):
        model({"x": [-1.0]})
    assert cr.is_grad_enabled() is True  # anomaly mode left the grad mode as it was
