"""Optimizers: turn each parameter's slope into a step, and take it.

StatQuest's gradient descent is the first one: ``step size = slope * learning rate`` and
``new value = old value - step size``. The others add momentum (SGD), or scale each step
by running averages of the slope and its square (Adam, AdamW). Their arithmetic follows
PyTorch's ``torch.optim`` exactly (the tests compare them step by step).

``step()`` updates the parameters in place and returns one :class:`Update` per parameter
it changed, holding the slope, the step size (old - new) and the new value, so that a
ledger can print what happened. Frozen parameters, and parameters without a gradient,
are left alone and not reported.

>>> from chainrule import Tensor
>>> from chainrule.nn import Parameter
>>> b3 = Parameter(0.0, name="b3")
>>> optimizer = GradientDescent([b3], lr=0.1)
>>> ((Tensor([0.0, 1.0, 0.0]) - (Tensor([-2.6, -1.6, -2.6]) + b3)) ** 2).sum().backward()
>>> update = optimizer.step()[0]
>>> [round(float(x), 6) for x in (update.slope, update.step_size, b3.data)]
[-15.6, -1.56, 1.56]

References: PyTorch's ``torch/optim/sgd.py`` and ``adam.py`` (the update rules), and
Loshchilov & Hutter, "Decoupled Weight Decay Regularization" (AdamW).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np

from chainrule.errors import ChainruleError
from chainrule.nn.module import Module, Parameter
from chainrule.tensor import Tensor, mark_changed, unchanged_since, writable_view


class Update(NamedTuple):
    """What one step did to one parameter (arrays of the parameter's shape).

    ``step_size`` is ``old value - new value``; for plain gradient descent it is
    ``learning rate * slope``. (A named tuple: one is made per parameter per step.)
    """

    parameter: Parameter
    slope: np.ndarray
    step_size: np.ndarray
    new_value: np.ndarray


#: ``Update`` made from one tuple without the named tuple's Python ``__new__`` (``step``
#: makes one per parameter per step).
_update = tuple.__new__
_ndarray = np.ndarray


class _FlatValues:
    """Single-number parameters' values in one vector (a formula's weights and biases),
    which a plain descent step changes in two numpy calls before writing each new value
    through a writable view of the parameter's array
    (:func:`~chainrule.tensor.writable_view`). The vector is current while each parameter
    keeps its array and the version that the last step gave it: an array put in its
    place, or a change made through :func:`~chainrule.tensor.inplace`, makes it stale.
    (Parameters that are arrays gain nothing: numpy's work per parameter is the same.)
    """

    def __init__(self, params: list[Parameter]) -> None:
        self.views = [writable_view(p) for p in params]  # (may give p an array of its own)
        self.arrays = [p.data for p in params]
        self.dtype = self.arrays[0].dtype
        self.values = np.array(self.arrays, self.dtype)
        self.slopes = np.empty(len(params), self.dtype)
        self.version = mark_changed(*params)  # one version for all: the vector's values

    @classmethod
    def of(cls, params: list[Parameter]) -> _FlatValues | None:
        """The vector of ``params``' values, or None unless each is a single number and
        all have one dtype."""
        dtype = params[0].data.dtype
        for p in params:
            if p.data.ndim or p.data.dtype != dtype:
                return None
        return cls(params)

    def current(self, params: list[Parameter]) -> bool:
        """Whether the vector still holds ``params``' values."""
        return unchanged_since(params, self.arrays, self.version)


def _number(name: str, value: Any, low: float = 0.0, strict: bool = False) -> float:
    """``value`` as a finite float >= ``low`` (> ``low`` when ``strict``), or a clear error."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    number = float(value) if ok else math.nan
    if not (math.isfinite(number) and (number > low if strict else number >= low)):
        bound = f"{'>' if strict else '>='} {low:g}"
        raise ChainruleError(f"{name} must be a finite number {bound}, got {value!r}")
    return number


def _parameter_list(params: Iterable[Parameter] | Module) -> list[Parameter]:
    found = params.parameters() if isinstance(params, Module) else list(params)
    for p in found:
        if not isinstance(p, Tensor):
            raise ChainruleError(f"an optimizer needs Parameters, got {type(p).__name__}")
    if len({id(p) for p in found}) != len(found):
        raise ChainruleError("the optimizer was given the same parameter twice")
    if not found:
        raise ChainruleError("the optimizer was given no parameters")
    return found


class Optimizer:
    """Base class: holds the parameters and the learning rate; subclasses define ``_step``.

    ``_step(i, value, slope)`` returns the step size for parameter ``i`` (old - new); the
    base class applies it in place and reports it.
    """

    def __init__(
        self,
        params: Iterable[Parameter] | Module,
        lr: float | None = None,
        *,
        learning_rate: float | None = None,
    ) -> None:
        self.params = _parameter_list(params)
        self.lr = _number("the learning rate", one_learning_rate(lr, learning_rate), strict=True)
        self.steps = 0  # how many times step() ran
        # parameter index -> (its array, a writable view of it): see step()
        self._views: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._flat: _FlatValues | None = None  # plain descent on a few numbers: see step()

    def zero_grad(self) -> None:
        """Forget every parameter's accumulated gradient (gradients add up until then).

        >>> p = Parameter(1.0); p.grad = np.array(2.0)
        >>> GradientDescent([p], lr=0.1).zero_grad(); p.grad is None
        True
        """
        for p in self.params:
            p.grad = None

    def step(self) -> list[Update]:
        """Update every trainable parameter that has a gradient; report what changed.

        >>> p = Parameter([1.0, 2.0]); p.grad = np.array([10.0, -10.0])
        >>> [u.new_value.tolist() for u in GradientDescent([p], lr=0.1).step()]
        [[0.0, 3.0]]
        """
        self.steps += 1
        if self._plain():
            updates = self._flat_step()
            if updates is not None:
                return updates
        updates = []
        views = self._views
        take = self._step
        for i, p in enumerate(self.params):
            slope = p.grad
            if slope is None or not p.requires_grad:  # frozen, or not reached by the loss
                continue
            if type(slope) is not _ndarray:  # a Tensor from backward(create_graph=True)
                slope = np.asarray(slope.data if isinstance(slope, Tensor) else slope)
            data = p.data
            assert slope.shape == data.shape, (slope.shape, data.shape)
            # A writable view of p's array, made once (p's own array stays read-only, so
            # the next forward pass need not guard it again), while p keeps that array.
            known = views.get(i)
            if known is not None and known[0] is data:
                value = known[1]
                mark_changed(p)  # graphs recorded before the step are stale
            else:
                value = writable_view(p)
                views[i] = (p.data, value)
            step = take(i, value, slope)
            value -= step  # in place (no graph is recorded): views of p see the new value
            updates.append(_update(Update, (p, slope, step, value.copy())))
        return updates

    def _step(self, i: int, value: np.ndarray, slope: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _plain(self) -> bool:
        """Whether a step is plain descent, ``step size = lr * slope`` for every entry (no
        state kept between steps), which :meth:`_flat_step` takes on all entries at once."""
        return False

    def _flat_step(self) -> list[Update] | None:
        """Plain descent on all the parameters at once, through one vector of their
        values: two numpy calls instead of a few per parameter (the Python per parameter
        costs more than the arithmetic on a formula's single numbers). The same numbers as
        the step per parameter. None (nothing done) unless every parameter is a single
        number, trainable, with a slope of its dtype (:class:`_FlatValues`); the step per
        parameter takes the other cases.
        """
        params, flat = self.params, self._flat
        if flat is None or not flat.current(params):
            flat = self._flat = _FlatValues.of(params)
            if flat is None:
                return None
        dtype, slopes = flat.dtype, []
        for p in params:  # (a loop, not a generator: it runs at every step)
            slope = p.grad
            if (
                type(slope) is not _ndarray  # None, or a Tensor (create_graph=True)
                or not p.requires_grad
                or slope.dtype is not dtype
                or slope.ndim
            ):
                return None
            slopes.append(slope)
        values = flat.values
        flat.slopes[:] = slopes
        step = np.multiply(flat.slopes, self.lr)
        values -= step
        new = values.copy()  # the ledger's values, apart from the parameters'
        flat.version = mark_changed(*params)  # graphs recorded before the step are stale
        updates = []
        i = 0
        for p, view, slope in zip(params, flat.views, slopes, strict=True):
            value = new[i, ...]  # (a 0-d view of entry i)
            view[...] = value
            updates.append(_update(Update, (p, slope, step[i], value)))
            i += 1
        return updates

    def __getstate__(self) -> dict[str, Any]:
        # The writable views alias the parameters' arrays: a copy makes its own.
        return {**self.__dict__, "_views": {}, "_flat": None}

    #: The optimizer's name in :data:`OPTIMIZERS` (a user's own optimizer: its class name).
    name = ""

    #: The settings besides the learning rate that :meth:`settings` reports.
    SETTINGS: tuple[str, ...] = ()

    def settings(self) -> dict[str, Any]:
        """The learning rate and the other settings, for a History to record.

        >>> Adam([Parameter(0.0)], lr=0.01).settings()
        {'lr': 0.01, 'betas': (0.9, 0.999), 'eps': 1e-08, 'weight_decay': 0.0}
        """
        return {"lr": self.lr, **{key: getattr(self, key) for key in self.SETTINGS}}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr:g}, {len(self.params)} parameters)"


class GradientDescent(Optimizer):
    """Plain gradient descent: ``new value = old value - learning rate * slope``.

    >>> p = Parameter(0.0); p.grad = np.array(-15.6551083806)
    >>> float(GradientDescent([p], lr=0.1).step()[0].step_size)
    -1.56551083806
    """

    name = "gradient_descent"

    def __init__(
        self,
        params: Iterable[Parameter] | Module,
        lr: float | None = None,
        *,
        learning_rate: float | None = None,
    ) -> None:
        super().__init__(params, lr, learning_rate=learning_rate)

    def _step(self, i: int, value: np.ndarray, slope: np.ndarray) -> np.ndarray:
        return self.lr * slope

    def _plain(self) -> bool:
        return True


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and L2 decay.

    As in ``torch.optim.SGD`` (dampening 0): ``d = slope + weight_decay * value``; with
    momentum, ``buffer = momentum * buffer + d`` (``d`` on the first step) and ``d`` becomes
    the buffer (or ``d + momentum * buffer`` for Nesterov); the step is ``lr * d``.

    >>> p = Parameter(1.0); opt = SGD([p], lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     p.grad = np.array(1.0); _ = opt.step()
    >>> round(float(p.data), 6)  # steps 0.1, then 0.1 * (0.9 + 1)
    0.71
    """

    name = "sgd"
    SETTINGS = ("momentum", "nesterov", "weight_decay")

    def __init__(
        self,
        params: Iterable[Parameter] | Module,
        lr: float | None = None,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        *,
        learning_rate: float | None = None,
    ) -> None:
        super().__init__(params, lr, learning_rate=learning_rate)
        self.momentum = _number("momentum", momentum)
        self.weight_decay = _number("weight_decay", weight_decay)
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0:
            raise ChainruleError("nesterov momentum needs a momentum > 0")
        self._buffers: dict[int, np.ndarray] = {}

    def _step(self, i: int, value: np.ndarray, slope: np.ndarray) -> np.ndarray:
        d = slope + self.weight_decay * value if self.weight_decay else slope
        if self.momentum:
            buffer = self._buffers.get(i)
            if buffer is None:
                buffer = self._buffers[i] = np.array(d, copy=True)
            else:
                buffer *= self.momentum
                buffer += d
            d = d + self.momentum * buffer if self.nesterov else buffer
        return self.lr * d

    def _plain(self) -> bool:
        return not self.momentum and not self.weight_decay

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(lr={self.lr:g}, momentum={self.momentum:g}, "
            f"nesterov={self.nesterov}, weight_decay={self.weight_decay:g})"
        )


class Momentum(SGD):
    """SGD with momentum 0.9 (the registry's ``"momentum"``).

    >>> Momentum([Parameter(0.0)], lr=0.1).momentum
    0.9
    """

    name = "momentum"

    def __init__(
        self,
        params: Iterable[Parameter] | Module,
        lr: float | None = None,
        momentum: float = 0.9,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        *,
        learning_rate: float | None = None,
    ) -> None:
        super().__init__(params, lr, momentum, nesterov, weight_decay, learning_rate=learning_rate)


class Adam(Optimizer):
    """Adam: steps scaled by running averages of the slope and of its square.

    As in ``torch.optim.Adam``: ``g = slope + weight_decay * value``;
    ``m = beta1 m + (1 - beta1) g``, ``v = beta2 v + (1 - beta2) g^2``; the step is
    ``lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)``. The first step
    moves every entry by about ``lr``, whatever the size of its slope.

    >>> p = Parameter(1.0); p.grad = np.array(123.0)
    >>> round(float(Adam([p], lr=0.01).step()[0].step_size), 6)
    0.01
    """

    name = "adam"
    SETTINGS = ("betas", "eps", "weight_decay")

    def __init__(
        self,
        params: Iterable[Parameter] | Module,
        lr: float | None = None,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        learning_rate: float | None = None,
    ) -> None:
        if lr is None and learning_rate is None:
            lr = 0.001
        super().__init__(params, lr, learning_rate=learning_rate)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ChainruleError(f"betas must be two numbers, got {betas!r}")
        b1, b2 = (_number(f"betas[{k}]", b) for k, b in enumerate(betas))
        if not (b1 < 1 and b2 < 1):
            raise ChainruleError(f"betas must each be in [0, 1), got {tuple(betas)}")
        self.betas = (b1, b2)
        self.eps = _number("eps", eps)
        self.weight_decay = _number("weight_decay", weight_decay)
        self._moments: dict[int, tuple[np.ndarray, np.ndarray, list[int]]] = {}

    def _adam_step(self, i: int, slope: np.ndarray) -> np.ndarray:
        b1, b2 = self.betas
        if i not in self._moments:
            self._moments[i] = (np.zeros_like(slope), np.zeros_like(slope), [0])
        m, v, count = self._moments[i]
        count[0] += 1  # steps taken by this parameter (it may have been frozen for some)
        t = count[0]
        m += (1 - b1) * (slope - m)
        v *= b2
        v += (1 - b2) * slope * slope
        denominator = np.sqrt(v) / math.sqrt(1 - b2**t) + self.eps
        return (self.lr / (1 - b1**t)) * m / denominator

    def _step(self, i: int, value: np.ndarray, slope: np.ndarray) -> np.ndarray:
        g = slope + self.weight_decay * value if self.weight_decay else slope
        return self._adam_step(i, g)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(lr={self.lr:g}, betas={self.betas}, eps={self.eps:g}, "
            f"weight_decay={self.weight_decay:g})"
        )


class AdamW(Adam):
    """Adam with decoupled weight decay: each step also shrinks the value by ``lr * wd``.

    As in ``torch.optim.AdamW``: ``value *= 1 - lr * weight_decay``, then Adam's step
    on the plain slope (the decay does not enter the running averages).

    >>> p = Parameter(1.0); p.grad = np.array(0.0)
    >>> float(AdamW([p], lr=0.1, weight_decay=0.5).step()[0].new_value)
    0.95
    """

    name = "adamw"

    def __init__(
        self,
        params: Iterable[Parameter] | Module,
        lr: float | None = None,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        *,
        learning_rate: float | None = None,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, learning_rate=learning_rate)

    def _step(self, i: int, value: np.ndarray, slope: np.ndarray) -> np.ndarray:
        step = self._adam_step(i, slope)
        if self.weight_decay:
            step += (self.lr * self.weight_decay) * value
        return step


def one_learning_rate(lr: float | None, learning_rate: float | None) -> float:
    """The learning rate given as ``lr`` (PyTorch's name) or ``learning_rate`` (its long
    form, StatQuest's words): either is accepted everywhere, both only when they agree.

    >>> one_learning_rate(None, 0.1), one_learning_rate(0.1, None)
    (0.1, 0.1)
    >>> one_learning_rate(0.1, 0.2)
    Traceback (most recent call last):
    ...
    chainrule.errors.ChainruleError: lr=0.1 and learning_rate=0.2 are the same setting: \
give one of them
    """
    if lr is not None and learning_rate is not None and lr != learning_rate:
        raise ChainruleError(
            f"lr={lr!r} and learning_rate={learning_rate!r} are the same setting: give one of them"
        )
    value = lr if lr is not None else learning_rate
    if value is None:
        raise ChainruleError("a learning rate is needed: give lr= (or learning_rate=)")
    return value


#: The optimizers by name.
OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in (GradientDescent, SGD, Momentum, Adam, AdamW)
}


def make_optimizer(
    name: str, params: Iterable[Parameter] | Module, learning_rate: float, **options: Any
) -> Optimizer:
    """The optimizer called ``name`` (see :data:`OPTIMIZERS`) with its options.

    >>> make_optimizer("sgd", [Parameter(0.0)], 0.1, momentum=0.5)
    SGD(lr=0.1, momentum=0.5, nesterov=False, weight_decay=0)
    """
    key = name.strip().lower().replace("-", "_") if isinstance(name, str) else name
    try:
        cls = OPTIMIZERS[key]
    except (KeyError, TypeError):
        raise ChainruleError(
            f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}"
        ) from None
    accepted = [
        n
        for n in inspect.signature(cls.__init__).parameters
        if n not in {"self", "params", "lr", "learning_rate"}
    ]
    unknown = [option for option in options if option not in accepted]
    if unknown:
        raise ChainruleError(
            f"optimizer {key!r} has no option {', '.join(map(repr, unknown))}; "
            f"its options are: {', '.join(accepted) or 'none'}"
        )
    return cls(params, learning_rate, **options)
