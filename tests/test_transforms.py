"""Nested grad through closures, and jvp, vjp, jacobian, hessian, hvp, against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def torch_grad(torch, f, x):
    x = torch.as_tensor(x, dtype=torch.float64).requires_grad_(True)
    (g,) = torch.autograd.grad(f(x), x, create_graph=True)
    return g


def test_the_issue_examples(torch):
    # d/dx of x * (d/dy x y at y = 2) = d/dx of x * x = 2 x.
    ours = cr.grad(lambda x: x * cr.grad(lambda y: x * y)(2.0))(1.0)
    theirs = torch_grad(torch, lambda x: x * torch_grad(torch, lambda y: x * y, 2.0), 1.0)
    assert float(ours) == float(theirs.detach()) == 2.0
    ours = cr.grad(lambda x: cr.grad(lambda y: x * y * y)(3.0))(1.0)
    theirs = torch_grad(torch, lambda x: torch_grad(torch, lambda y: x * y * y, 3.0), 1.0)
    assert isinstance(ours, np.ndarray)  # plain inputs give plain arrays at the top
    assert float(ours) == float(theirs.detach()) == 6.0


@pytest.mark.parametrize("x0, y0, z0", [(1.5, 2.0, 0.5), (-0.7, 0.3, 1.1)])
def test_third_order_through_closures_matches_pytorch(torch, x0, y0, z0):
    def inner(x, y, lib):
        return lambda z: lib.sin(x * z) * y**2 + lib.exp(x * y) * z**3

    def ours(x):
        return cr.grad(lambda y: cr.grad(inner(x, y, cr))(z0) * x)(y0)

    def theirs(x):
        return torch_grad(torch, lambda y: torch_grad(torch, inner(x, y, torch), z0) * x, y0)

    # three nested derivatives: d/dx d/dy d/dz, then once more in x (fourth level of graph)
    ours_first = cr.grad(ours)(x0)
    theirs_first = torch_grad(torch, theirs, x0)
    np.testing.assert_allclose(ours_first, theirs_first.detach().numpy(), rtol=1e-12)
    ours_second = cr.grad(cr.grad(ours))(x0)
    theirs_second = torch_grad(torch, lambda x: torch_grad(torch, theirs, x), x0)
    np.testing.assert_allclose(ours_second, theirs_second.detach().numpy(), rtol=1e-12)


def test_inner_leaves_stay_constants_for_the_outer_grad():
    # The inner y is no variable of the outer function: its result is a plain array.
    result = cr.grad(lambda x: cr.grad(lambda y: (x * y) ** 2)(1.0))(2.0)
    assert isinstance(result, np.ndarray) and float(result) == 8.0  # d/dx 2 x^2 y = 4 x


def f_vector(x, lib):
    return lib.sin(x) * x[0] + x**2


def test_jacobian_and_vjp_and_jvp_match_pytorch(torch):
    x0 = np.array([0.3, -1.2, 2.0])
    expected = torch.autograd.functional.jacobian(
        lambda x: f_vector(x, torch), torch.tensor(x0)
    ).numpy()
    np.testing.assert_allclose(cr.jacobian(lambda x: f_vector(x, cr))(x0), expected, rtol=1e-12)
    v = np.array([1.0, -2.0, 0.5])
    out, back = cr.vjp(lambda x: f_vector(x, cr), x0)
    np.testing.assert_allclose(back(v)[0], v @ expected, rtol=1e-12)
    value, tangent = cr.jvp(lambda x: f_vector(x, cr), [x0], [v])
    np.testing.assert_allclose(value, out)
    np.testing.assert_allclose(tangent, expected @ v, rtol=1e-12)


def test_hessian_and_hvp_match_pytorch(torch):
    def f(x, lib):
        flipped = cr.flip(x, 0) if lib is cr else lib.flip(x, [0])
        return (lib.tanh(x) * flipped).sum() + (x**3).sum()

    x0 = np.array([0.3, -1.2, 2.0])
    expected = torch.autograd.functional.hessian(lambda x: f(x, torch), torch.tensor(x0))
    np.testing.assert_allclose(cr.hessian(lambda x: f(x, cr))(x0), expected.numpy(), rtol=1e-12)
    v = np.array([1.0, 0.5, -2.0])
    np.testing.assert_allclose(
        cr.hvp(lambda x: f(x, cr), [x0], v), expected.numpy() @ v, rtol=1e-12
    )


def test_transforms_refuse_bad_shapes():
    with pytest.raises(cr.ShapeError, match="tangent 0 has shape"):
        cr.jvp(lambda x: x * 2, [[1.0, 2.0]], [[1.0]])
    with pytest.raises(cr.ShapeError, match="v has shape"):
        cr.vjp(lambda x: x * 2, [1.0, 2.0])[1]([1.0])
    with pytest.raises(cr.ShapeError, match="one number"):
        cr.hvp(lambda x: x * 2, [[1.0, 2.0]], [1.0, 1.0])
