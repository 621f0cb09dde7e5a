"""numpy on Tensors (numpy's dispatch) and the chainrule.numpy namespace."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.numpy as cnp
from chainrule.ops import OPS


def two_layer_loss(np_, w1, w2, x, y):
    hidden = np_.tanh(np_.dot(x, w1))
    return np_.sum((np_.dot(hidden, w2) - y) ** 2)


RNG = np.random.default_rng(3)
W1, W2 = RNG.normal(size=(3, 4)), RNG.normal(size=(4, 1))
X, Y = RNG.normal(size=(5, 3)), RNG.normal(size=(5, 1))


def test_a_plain_numpy_network_through_chainrule_numpy_and_numpy_on_tensors():
    through_namespace = cr.grad(lambda a, b: two_layer_loss(cnp, a, b, X, Y), argnums=(0, 1))
    through_numpy = cr.grad(lambda a, b: two_layer_loss(np, a, b, X, Y), argnums=(0, 1))
    g1, g2 = through_namespace(W1, W2)
    h1, h2 = through_numpy(W1, W2)
    np.testing.assert_allclose(g1, h1, rtol=1e-14)
    np.testing.assert_allclose(g2, h2, rtol=1e-14)
    cr.check_grads(lambda a, b: two_layer_loss(np, a, b, X, Y), W1, W2)
    # and the value is numpy's own on plain arrays
    assert float(two_layer_loss(np, cr.tensor(W1), cr.tensor(W2), X, Y)) == pytest.approx(
        two_layer_loss(np, W1, W2, X, Y), rel=1e-14
    )


def test_the_network_matches_pytorch():
    torch = pytest.importorskip("torch")
    tw1, tw2 = (torch.tensor(w, requires_grad=True) for w in (W1, W2))
    hidden = torch.tanh(torch.tensor(X) @ tw1)
    loss = ((hidden @ tw2 - torch.tensor(Y)) ** 2).sum()
    expected = torch.autograd.grad(loss, [tw1, tw2])
    found = cr.grad(lambda a, b: two_layer_loss(np, a, b, X, Y), argnums=(0, 1))(W1, W2)
    for ours, theirs in zip(found, expected, strict=True):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-12)


@pytest.mark.parametrize("name", sorted({n for op in OPS.values() for n in op.numpy}))
def test_every_numpy_name_of_the_table_records_its_op(name):
    from chainrule.tensor import NUMPY_NAMES

    op = OPS[NUMPY_NAMES[name]]
    func = np.linalg.norm if name == "linalg.norm" else getattr(np, name)
    assert callable(func)  # a real numpy name
    ours = cnp.linalg.norm if name == "linalg.norm" else getattr(cnp, name)
    assert ours is getattr(cr, op.name)


def test_ufuncs_and_functions_on_tensors_record_the_table_op():
    t = cr.tensor([0.5, 1.0], requires_grad=True)
    assert np.sin(t).op is OPS["sin"]
    assert np.sum(t).op is OPS["sum"]
    assert np.mean(t, axis=0).op is OPS["mean"]
    assert np.dot(t, t).op is OPS["dot"]
    assert np.linalg.norm(t).op is OPS["norm"]
    assert (np.array([1.0, 2.0]) * t).op is OPS["mul"]  # numpy on the left works too
    np.testing.assert_array_equal(np.array([1.0, 0.0]) < t, [False, True])
    assert np.shape(t) == (2,) and np.allclose(t, [0.5, 1.0])
    assert [p.shape for p in np.split(t, 2)] == [(1,), (1,)]
    assert np.vstack([t, t]).shape == (2, 2)


def test_numpy_without_a_table_op_is_one_clear_error():
    t = cr.tensor([0.5, 1.0], requires_grad=True)
    with pytest.raises(cr.ChainruleError, match=r"numpy.cbrt .* nearest is chainrule.sqrt"):
        np.cbrt(t)
    with pytest.raises(cr.ChainruleError, match=r"numpy.add.reduce"):
        np.add.reduce(t)
    with pytest.raises(cr.ChainruleError, match=r"sum: .*'out'"):
        np.sum(t, out=np.empty(()))
    with pytest.raises(cr.ChainruleError, match=r"numpy.median"):
        np.median(t)
    with pytest.raises(AttributeError, match="nearest is chainrule.numpy.sin"):
        cnp.sinn  # noqa: B018
