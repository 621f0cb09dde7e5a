"""Derivatives as functions: vjp, jvp (forward-mode products), jacobian, hessian, hvp.

All of them run the ONE reverse-mode engine (:mod:`chainrule.tensor`) and the op table's
rules; none has formulas of its own. ``jvp`` uses the linearity of the vector-Jacobian
product: ``u -> vjp(u)`` is linear, so differentiating ``<vjp(u), t>`` with respect to
``u`` gives the Jacobian-vector product ``J t`` (the "double vjp" trick; two reverse sweeps
instead of a forward-mode table).

>>> import chainrule as cr
>>> cr.jacobian(lambda x: x * x)([1.0, 2.0])
array([[2., 0.],
       [0., 4.]])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule.errors import ChainruleError, ShapeError
from chainrule.tensor import Tensor, grad, gradients


def _leaves(args: Sequence[Any]) -> list[Tensor]:
    return [
        Tensor(np.asarray(getattr(a, "data", a), dtype=np.float64), requires_grad=True)
        for a in args
    ]


def _output(f: Callable[..., Any], xs: list[Tensor], where: str) -> Tensor:
    out = f(*xs)
    if not isinstance(out, Tensor):
        raise ShapeError(f"{where}: f must return a Tensor, got {type(out).__name__}")
    return out


def vjp(f: Callable[..., Tensor], *args: Any) -> tuple[np.ndarray, Callable[[Any], Any]]:
    """``f(*args)`` and the function ``v -> v^T J`` (one array per argument).

    >>> out, back = vjp(lambda x: x * 3.0, [1.0, 2.0])
    >>> back([1.0, 1.0])
    (array([3., 3.]),)
    """
    xs = _leaves(args)
    out = _output(f, xs, "vjp")

    def pullback(v: Any) -> tuple[np.ndarray, ...]:
        v = np.asarray(v, dtype=out.dtype)
        if v.shape != out.shape:
            raise ShapeError(f"vjp: v has shape {v.shape}, f's output has {out.shape}")
        if not out.requires_grad:
            return tuple(np.zeros_like(x.data) for x in xs)
        return tuple(gradients(out, xs, gradient=v, retain_graph=True))

    return out.data, pullback


def jvp(
    f: Callable[..., Tensor], args: Sequence[Any], tangents: Sequence[Any]
) -> tuple[np.ndarray, np.ndarray]:
    """``f(*args)`` and the Jacobian-vector product ``J t`` (forward mode).

    >>> jvp(lambda x: x ** 2, [3.0], [1.0])
    (array(9.), array(6.))
    """
    if len(args) != len(tangents):
        raise ChainruleError(f"jvp: {len(args)} argument(s) but {len(tangents)} tangent(s)")
    xs = _leaves(args)
    ts = [np.asarray(t, dtype=np.float64) for t in tangents]
    for i, (x, t) in enumerate(zip(xs, ts, strict=True)):
        if t.shape != x.shape:
            raise ShapeError(f"jvp: tangent {i} has shape {t.shape}, argument {i} has {x.shape}")
    out = _output(f, xs, "jvp")
    if not out.requires_grad:
        return out.data, np.zeros_like(out.data)
    u = Tensor(np.zeros(out.shape), requires_grad=True)  # any point: vjp is linear in u
    pulled = gradients(out, xs, gradient=u, create_graph=True)
    along = sum(((p * t).sum() for p, t in zip(pulled, ts, strict=True)), Tensor(0.0))
    if not along.requires_grad:
        return out.data, np.zeros_like(out.data)
    (tangent_out,) = gradients(along, [u])
    return out.data, tangent_out


def jacobian(f: Callable[..., Tensor], argnum: int = 0) -> Callable[..., np.ndarray]:
    """A function giving the Jacobian of ``f``: shape ``out.shape + arg.shape``.

    One reverse sweep per output entry (as ``torch.autograd.functional.jacobian``).

    >>> jacobian(lambda x: x.sum())([1.0, 2.0])
    array([1., 1.])
    """

    def jacobian_of_f(*args: Any) -> np.ndarray:
        xs = _leaves(args)
        out = _output(f, xs, "jacobian")
        x = xs[argnum]
        rows = np.zeros((out.size,) + x.shape)
        if out.requires_grad:
            for k in range(out.size):
                seed = np.zeros(out.size)
                seed[k] = 1.0
                (rows[k],) = gradients(
                    out, [x], gradient=seed.reshape(out.shape), retain_graph=True
                )
        return rows.reshape(out.shape + x.shape)

    return jacobian_of_f


def hessian(f: Callable[..., Tensor], argnum: int = 0) -> Callable[..., np.ndarray]:
    """A function giving the Hessian of the scalar ``f``: the Jacobian of its gradient.

    >>> hessian(lambda x: (x ** 3).sum())([1.0, 2.0])
    array([[ 6.,  0.],
           [ 0., 12.]])
    """
    return jacobian(grad(f, argnums=argnum), argnum=argnum)


def hvp(f: Callable[..., Tensor], args: Sequence[Any], v: Any, argnum: int = 0) -> np.ndarray:
    """The Hessian-vector product ``H v`` of the scalar ``f`` without forming ``H``.

    Reverse over reverse: the gradient of ``<grad f, v>``.

    >>> hvp(lambda x: (x ** 3).sum(), [[1.0, 2.0]], [1.0, 1.0])
    array([ 6., 12.])
    """
    xs = _leaves(args)
    out = _output(f, xs, "hvp")
    if out.size != 1:
        raise ShapeError(f"hvp: f must return one number, got shape {out.shape}")
    v = np.asarray(v, dtype=np.float64)
    if not out.requires_grad:
        return np.zeros_like(xs[argnum].data)
    (g,) = gradients(out, [xs[argnum]], create_graph=True)
    along = (g * v).sum()
    if not along.requires_grad:
        return np.zeros_like(xs[argnum].data)
    (result,) = gradients(along, [xs[argnum]])
    return result
