"""Training benchmarks: the seed's 7-parameter network, a digits MLP, and its peak memory.

Each implementation trains the same model from the same start on the same batches, in
this run: chainrule twice (a loop written with its nn / optim / losses API, and the public
``chainrule.train``, whose History, stop rules and checks are part of the time), backprop
written by hand in numpy (the limit), PyTorch and micrograd when installed, all with the
same thread settings. The results are checked to agree before any time is reported.

  python benchmarks/bench_training.py                 # all three sections
  python benchmarks/bench_training.py --only seed     # one section
  python benchmarks/bench_training.py --quick         # a fast smoke run

The chainrule side needs chainrule.nn, chainrule.optim, chainrule.losses and
chainrule.Formula; while they are missing its rows are skipped and the script says so.
The memory section runs each implementation in a process of its own.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import math
import operator
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import _common

SECTIONS = ("seed", "digits", "memory")
#: The digits runs. "chainrule" is a loop written with its nn / optim / losses API;
#: "chainrule.train" is one call of the public training function.
IMPLEMENTATIONS = ("numpy", "chainrule", "chainrule.train", "torch")
CHAINRULE = ("chainrule", "chainrule.train")
COMPILED = "train(compile=True)"
COMPILED32 = "train(compile=True) float32"
COMPILED_LOOP = "compile(fn) loop"
JAX = "jax.jit"
NUMBA = "numba @njit step"

_parser = _common.parser(__doc__, default_threads=1)
_parser.add_argument(
    "--only", action="append", choices=SECTIONS, help="run only this section (repeatable)"
)
_parser.add_argument("--steps", type=int, default=1000, help="seed network steps (1000)")
_parser.add_argument("--epochs", type=int, default=10, help="digits epochs (10)")
_parser.add_argument(
    "--dtype", choices=("float64", "float32"), default="float64", help="digits dtype (float64)"
)
_parser.add_argument("--memory-worker", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
ARGS = _parser.parse_args()
if ARGS.steps < 1 or ARGS.epochs < 1:
    _parser.error("--steps and --epochs must be at least 1")
_common.set_threads(ARGS.threads)
if ARGS.threads == 1:  # one thread: CPU time, steadier than the wall clock on a shared machine
    _common.use_cpu_clock()

import numpy as np  # noqa: E402  (after set_threads, on purpose)

import chainrule as cr  # noqa: E402

_WORKER = ARGS.memory_worker
torch = _common.import_torch(ARGS.threads) if _WORKER in (None, "torch") else None
Value = _common.import_micrograd() if _WORKER is None else None
jax = _common.import_jax(ARGS.threads) if _WORKER is None else None
numba = _common.import_numba() if _WORKER is None else None

REPEAT = 2 if ARGS.quick else 9  # rounds: the goals take the median of their ratios
MIN_TIME = 0.05 if ARGS.quick else 0.2


def chainrule_api(*needed: str) -> tuple[dict[str, Any] | None, str]:
    """The pieces of chainrule's training API named in ``needed`` (e.g. ``"optim.SGD"``).

    Returns ``(pieces, "")``, or ``(None, what is missing)`` while the API is not written.
    """
    found, missing = {}, []
    for dotted in needed:
        module_name, _, attribute = dotted.rpartition(".")
        full = f"chainrule.{module_name}" if module_name else "chainrule"
        try:
            module = importlib.import_module(full)
        except ModuleNotFoundError as exc:
            if exc.name != full:
                raise  # the module exists but is broken: show it
            missing.append(f"chainrule.{dotted}")
            continue
        if hasattr(module, attribute):
            found[dotted] = getattr(module, attribute)
        else:
            missing.append(f"chainrule.{dotted}")
    if missing:
        return None, "chainrule.nn not available yet: missing " + ", ".join(missing)
    return found, ""


# ---------------------------------------------------------------------------------------
# 1. The seed's 7-parameter network, all parameters trained together
# ---------------------------------------------------------------------------------------

DOSAGE = [0.0, 0.5, 1.0]
OBSERVED = [0.0, 1.0, 0.0]
SEED_START = {"w1": 2.74, "b1": 0.0, "w2": -1.13, "b2": 0.0, "w3": 0.36, "w4": 0.63, "b3": 0.0}
SEED_FORMULA = """
y1 = softplus(w1 * dosage + b1)
y2 = softplus(w2 * dosage + b2)
predicted = w3 * y1 + w4 * y2 + b3
"""
SEED_LEARNING_RATE = 0.01
START_SSR = 1.89587816  # at SEED_START (StatQuest's example, recomputed in float64)


def numpy_seed(steps: int) -> float:
    """Hand-written forward and backward; returns the SSR after ``steps`` steps."""
    x, y = np.array(DOSAGE), np.array(OBSERVED)
    w1, b1, w2, b2, w3, w4, b3 = SEED_START.values()
    lr = SEED_LEARNING_RATE
    for _ in range(steps):
        x1, x2 = w1 * x + b1, w2 * x + b2
        y1, y2 = np.logaddexp(0.0, x1), np.logaddexp(0.0, x2)
        g = -2.0 * (y - (w3 * y1 + w4 * y2 + b3))  # dSSR/dpredicted
        g1 = g * w3 / (1.0 + np.exp(-x1))  # dSSR/dx1 (softplus' is the sigmoid)
        g2 = g * w4 / (1.0 + np.exp(-x2))  # dSSR/dx2
        grads = (g1 @ x, g1.sum(), g2 @ x, g2.sum(), g @ y1, g @ y2, g.sum())
        w1, b1, w2, b2, w3, w4, b3 = (
            p - lr * float(d) for p, d in zip((w1, b1, w2, b2, w3, w4, b3), grads, strict=True)
        )
    predicted = w3 * np.logaddexp(0.0, w1 * x + b1) + w4 * np.logaddexp(0.0, w2 * x + b2) + b3
    return float(np.sum((y - predicted) ** 2))


def chainrule_seed(api: dict[str, Any], steps: int) -> float:
    """The formula model trained by chainrule's optimizer on its SSR loss."""
    model = api["Formula"](SEED_FORMULA, inputs=["dosage"])
    _set_named_parameters(model, SEED_START)
    optimizer = api["optim.SGD"](model.parameters(), lr=SEED_LEARNING_RATE)
    ssr = api["losses.ssr"]
    inputs, target = {"dosage": cr.Tensor(DOSAGE)}, cr.Tensor(OBSERVED)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = ssr(model(inputs), target)
        loss.backward()
        optimizer.step()
    with cr.no_grad():
        return ssr(model(inputs), target).item()


def chainrule_train_seed(
    api: dict[str, Any], steps: int, compile: bool = False, dtype: str = "float64"
) -> float:
    """The same formula model trained by one call of ``chainrule.train`` (detail on, as
    by default for a model this small: every step's values, slopes and step sizes are
    recorded). Returns the final SSR that the History reports. ``dtype="float32"``: the
    parameters and the data in float32."""
    model = api["Formula"](SEED_FORMULA, inputs=["dosage"], dtype=dtype)  # float32 throughout
    _set_named_parameters(model, SEED_START, np.dtype(dtype))
    data: Any = ({"dosage": DOSAGE}, OBSERVED)
    if dtype != "float64":
        data = (np.array(DOSAGE, dtype).reshape(-1, 1), np.array(OBSERVED, dtype))
    if steps == 0:
        with cr.no_grad():
            return api["losses.ssr"](model(data[0]), data[1]).item()
    history = api["train"](
        model,
        data,
        loss="ssr",
        optimizer="gradient_descent",
        learning_rate=SEED_LEARNING_RATE,
        stop={"max_steps": steps},
        progress=False,
        **({"compile": True} if compile else {}),
    )
    _common.check(
        history.detail and history.num_steps == steps,
        f"seed: chainrule.train took {history.num_steps} steps (detail {history.detail}), "
        f"expected {steps} with detail",
    )
    return history.final_loss


def _set_named_parameters(
    model: Any, values: dict[str, float], dtype: np.dtype | None = None
) -> None:
    if hasattr(model, "named_parameters"):
        named = dict(model.named_parameters())
    else:
        named = {p.name: p for p in model.parameters()}
    _common.check(
        set(values) <= set(named),
        f"the formula model has parameters {sorted(named)}; the seed needs {sorted(values)}",
    )
    for name, value in values.items():
        p = named[name]
        p.data = np.full(p.shape, value, dtype=dtype or p.dtype)


def torch_seed(steps: int) -> float:
    f64 = torch.float64
    x, y = torch.tensor(DOSAGE, dtype=f64), torch.tensor(OBSERVED, dtype=f64)
    params = [torch.tensor(v, dtype=f64, requires_grad=True) for v in SEED_START.values()]
    w1, b1, w2, b2, w3, w4, b3 = params
    softplus = torch.nn.functional.softplus
    optimizer = torch.optim.SGD(params, lr=SEED_LEARNING_RATE)

    def ssr():
        return ((y - (w3 * softplus(w1 * x + b1) + w4 * softplus(w2 * x + b2) + b3)) ** 2).sum()

    for _ in range(steps):
        optimizer.zero_grad()
        loss = ssr()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return ssr().item()


def jax_seed(steps: int) -> float:
    """``jax.jit`` of one whole step (loss, gradient by ``jax.grad``, update), float64."""
    jnp = jax.numpy
    x, y = jnp.array(DOSAGE), jnp.array(OBSERVED)
    step = _jax_step()
    p = jnp.array(list(SEED_START.values()))
    for _ in range(steps):
        p = step(p, x, y)
    return float(_jax_ssr(p, x, y))


def _jax_ssr(p: Any, x: Any, y: Any) -> Any:
    w1, b1, w2, b2, w3, w4, b3 = p
    softplus = jax.nn.softplus
    predicted = w3 * softplus(w1 * x + b1) + w4 * softplus(w2 * x + b2) + b3
    return jax.numpy.sum((y - predicted) ** 2)


@functools.cache
def _jax_step() -> Callable[..., Any]:
    """Made once: a jitted function is compiled on its first call, in the warm-up."""
    return jax.jit(lambda p, x, y: p - SEED_LEARNING_RATE * jax.grad(_jax_ssr)(p, x, y))


def numba_seed(steps: int) -> float:
    """The seed step written by hand as one ``numba.njit`` function over the 7 values:
    the floor for a numba replay of the compiled program (one call, no numpy per op)."""
    p = np.array(list(SEED_START.values()))
    x, y = np.array(DOSAGE), np.array(OBSERVED)
    step = _numba_step()
    for _ in range(steps):
        step(p, x, y, SEED_LEARNING_RATE)
    w1, b1, w2, b2, w3, w4, b3 = p
    predicted = w3 * np.logaddexp(0.0, w1 * x + b1) + w4 * np.logaddexp(0.0, w2 * x + b2) + b3
    return float(np.sum((y - predicted) ** 2))


@functools.cache
def _numba_step() -> Callable[..., None]:
    @numba.njit(cache=False, fastmath=False)
    def step(p, x, y, lr):
        w1, b1, w2, b2, w3, w4, b3 = p[0], p[1], p[2], p[3], p[4], p[5], p[6]
        g = np.zeros(7)
        for i in range(x.shape[0]):
            x1, x2 = w1 * x[i] + b1, w2 * x[i] + b2
            y1, y2 = np.logaddexp(0.0, x1), np.logaddexp(0.0, x2)
            d = -2.0 * (y[i] - (w3 * y1 + w4 * y2 + b3))
            d1 = d * w3 / (1.0 + np.exp(-x1))
            d2 = d * w4 / (1.0 + np.exp(-x2))
            g[0] += d1 * x[i]
            g[1] += d1
            g[2] += d2 * x[i]
            g[3] += d2
            g[4] += d * y1
            g[5] += d * y2
            g[6] += d
        for k in range(7):
            p[k] -= lr * g[k]

    return step


def micrograd_seed(steps: int) -> float:
    params = [Value(v) for v in SEED_START.values()]
    w1, b1, w2, b2, w3, w4, b3 = params
    softplus = _common.micrograd_softplus

    def ssr():
        squares = [
            (o - (w3 * softplus(w1 * d + b1) + w4 * softplus(w2 * d + b2) + b3)) ** 2
            for d, o in zip(DOSAGE, OBSERVED, strict=True)
        ]
        return functools.reduce(operator.add, squares)

    for _ in range(steps):
        for p in params:
            p.grad = 0.0
        ssr().backward()
        for p in params:
            p.data -= SEED_LEARNING_RATE * p.grad
    return ssr().data


def bench_seed() -> None:
    steps = ARGS.steps
    runs: dict[str, Callable[[int], float]] = {"numpy": numpy_seed}
    skipped = {}
    api, why = chainrule_api("Formula", "optim.SGD", "losses.ssr")
    if api is None:
        skipped["chainrule"] = why
    else:
        runs["chainrule"] = functools.partial(chainrule_seed, api)
    api, why = chainrule_api("Formula", "train", "losses.ssr")
    if api is None:
        skipped["chainrule.train"] = why
    else:
        runs["chainrule.train"] = functools.partial(chainrule_train_seed, api)
        runs[COMPILED] = functools.partial(chainrule_train_seed, api, compile=True)
        runs[COMPILED32] = functools.partial(
            chainrule_train_seed, api, compile=True, dtype="float32"
        )
    if jax is not None:
        runs[JAX] = jax_seed
    else:
        skipped[JAX] = "not installed (pip install jax; a reference, never a dependency)"
    if numba is not None:
        runs[NUMBA] = numba_seed
    else:
        skipped[NUMBA] = "not installed (pip install numba)"
    if torch is not None:
        runs["torch"] = torch_seed
    else:
        skipped["torch"] = "not installed"
    if Value is not None:
        runs["micrograd"] = micrograd_seed
    else:
        skipped["micrograd"] = "not installed"

    final = {}
    for name, run in runs.items():
        start = run(0)
        tol = 1e-5 if name == COMPILED32 else 1e-8
        _common.check(
            abs(start - START_SSR) < tol,
            f"seed: {name} starts at SSR {start!r}, expected {START_SSR}",
        )
        final[name] = run(steps)
    for name, ssr in final.items():
        _common.check(
            math.isclose(
                ssr, final["numpy"], rel_tol=1e-4 if name == COMPILED32 else 1e-9, abs_tol=1e-12
            ),
            f"seed: {name} ends at SSR {ssr!r}, the hand-written numpy at {final['numpy']!r}",
        )

    candidates = {name: functools.partial(run, steps) for name, run in runs.items()}
    timings = _common.compare(candidates, repeat=REPEAT, min_time=MIN_TIME)
    _common.print_timings(
        f"seed network, 7 parameters: {steps} full-batch gradient-descent steps, "
        f"lr {SEED_LEARNING_RATE}, float64, {ARGS.threads} thread(s)",
        timings,
        references=["numpy", "torch", "micrograd"],
        unit="us/step",
        scale=1e6 / steps,
        extra={"final SSR": {name: f"{ssr:.10f}" for name, ssr in final.items()}},
        skipped=skipped,
    )
    print(
        f"  all implementations end at the same SSR (checked; float32 to 1e-4): "
        f"{final['numpy']:.10f}"
    )
    for name in CHAINRULE:
        _common.print_goal(
            f"{name} time per step vs PyTorch",
            _common.seconds_ratio(timings, name, "torch"),
            0.5,
            _common.why_skipped(skipped, name, "torch"),
        )
    _common.print_goal(
        "chainrule time per step vs micrograd (issue 13)",
        _common.seconds_ratio(timings, "chainrule", "micrograd"),
        0.8,
        _common.why_skipped(skipped, "chainrule", "micrograd"),
    )
    _common.print_median_goal(
        "chainrule.train time per step vs the bare chainrule loop (issue 13: within 10%)",
        _common.round_ratios(timings, "chainrule.train", "chainrule"),
        1.1,
        _common.why_skipped(skipped, "chainrule.train", "chainrule"),
    )
    for name, limit, note in (
        (COMPILED, 1.2, "issue 13; moonshot 1.0x"),
        (COMPILED32, 1.2, "float32"),
        (JAX, 1.4, "the issue's figure for jax.jit"),
        (NUMBA, 1.0, "what a numba replay could reach"),
    ):
        _common.print_median_goal(
            f"{name} time per step vs hand-written numpy ({note})",
            _common.round_ratios(timings, name, "numpy"),
            limit,
            _common.why_skipped(skipped, name),
        )


# ---------------------------------------------------------------------------------------
# 2. Digits: MLP 64-128-64-10, ReLU, softmax cross-entropy, minibatch SGD
# ---------------------------------------------------------------------------------------

SIZES = [64, 128, 64, 10]
BATCH = 64
DIGITS_LEARNING_RATE = 0.1
DATA_SEED, INIT_SEED, BATCH_SEED = 0, 1, 2
SAME_ACCURACY = 0.005  # "the same accuracy": within half a percentage point


@dataclass
class Digits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits(dtype: np.dtype) -> Digits | None:
    """scikit-learn's 8x8 digits, pixels / 16, split 80/20 (seeded); None without sklearn."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        return None
    bunch = sklearn_digits()
    x = (np.asarray(bunch.data, dtype=np.float64) / 16.0).astype(dtype)
    y = np.asarray(bunch.target, dtype=np.int64)
    order = np.random.default_rng(DATA_SEED).permutation(len(y))
    n_test = round(0.2 * len(y))
    test, train = order[:n_test], order[n_test:]
    return Digits(x[train], y[train], x[test], y[test])


def he_uniform(dtype: np.dtype) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight (in, out), bias) per layer: U(+-sqrt(6 / fan_in)) weights, zero biases."""
    rng = np.random.default_rng(INIT_SEED)
    layers = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:], strict=True):
        bound = math.sqrt(6.0 / n_in)
        w = rng.uniform(-bound, bound, size=(n_in, n_out)).astype(dtype)
        b = np.zeros(n_out, dtype=dtype)
        w.flags.writeable = b.flags.writeable = False  # each model must train a copy
        layers.append((w, b))
    return layers


def minibatches(n: int, epochs: int) -> list[list[np.ndarray]]:
    """The row indices of every minibatch of every epoch: one seeded shuffle per epoch."""
    rng = np.random.default_rng(BATCH_SEED)
    orders = [rng.permutation(n) for _ in range(epochs)]
    return [[order[i : i + BATCH] for i in range(0, n, BATCH)] for order in orders]


class NumpyMLP:
    """Forward and backward written by hand: the limit for an engine built on numpy."""

    def __init__(self, init: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.layers = [(w.copy(), b.copy()) for w, b in init]

    def logits(self, x: np.ndarray) -> np.ndarray:
        last = len(self.layers) - 1
        for i, (w, b) in enumerate(self.layers):
            x = x @ w + b
            if i < last:
                x = np.maximum(x, 0.0)
        return x

    def loss(self, x: np.ndarray, labels: np.ndarray) -> float:
        z = self.logits(x)
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-log_p[np.arange(len(labels)), labels].mean())

    def step(self, x: np.ndarray, labels: np.ndarray) -> None:
        last = len(self.layers) - 1
        inputs = []  # each layer's input, kept for backward
        for i, (w, b) in enumerate(self.layers):
            inputs.append(x)
            x = x @ w + b
            if i < last:
                x = np.maximum(x, 0.0)
        # Mean softmax cross-entropy: d loss / d logits = (softmax - one_hot) / batch.
        g = np.exp(x - x.max(axis=1, keepdims=True))
        g /= g.sum(axis=1, keepdims=True)
        g[np.arange(len(labels)), labels] -= 1.0
        g /= len(labels)
        for i in range(last, -1, -1):
            w, b = self.layers[i]
            a = inputs[i]
            grad_w, grad_b = a.T @ g, g.sum(axis=0)
            if i > 0:
                g = (g @ w.T) * (a > 0)  # through the ReLU that made a
            w -= DIGITS_LEARNING_RATE * grad_w
            b -= DIGITS_LEARNING_RATE * grad_b


class ChainruleMLP:
    """chainrule's nn.MLP, optim.SGD and losses.cross_entropy."""

    def __init__(self, api: dict[str, Any], init: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.model = api["nn.MLP"](SIZES, activation="relu")
        _load_layers(self.model.parameters(), init)
        self.optimizer = api["optim.SGD"](self.model.parameters(), lr=DIGITS_LEARNING_RATE)
        self.cross_entropy = api["losses.cross_entropy"]

    def logits(self, x: np.ndarray) -> np.ndarray:
        with cr.no_grad():
            return self.model(cr.Tensor(x)).data

    def loss(self, x: np.ndarray, labels: np.ndarray) -> float:
        with cr.no_grad():
            return self.cross_entropy(self.model(cr.Tensor(x)), labels).item()

    def step(self, x: np.ndarray, labels: np.ndarray) -> None:
        loss = self.cross_entropy(self.model(cr.Tensor(x)), labels)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()


class ChainruleCompiledLoopMLP:
    """A loop around ``chainrule.compile``: the loss of the layers written out, compiled
    once, returns the loss and the slopes; the loop updates the weights with numpy, as
    the hand-written one does. It measures the compiled replay on its own, without what
    ``train`` records (the History, the checks, the final pass)."""

    def __init__(self, api: dict[str, Any], init: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.params = [a.copy() for layer in init for a in layer]
        cross_entropy = api["losses.cross_entropy"]

        def loss(w1: Any, b1: Any, w2: Any, b2: Any, w3: Any, b3: Any, x: Any, t: Any) -> Any:
            h1 = cr.relu(x @ w1 + b1)
            h2 = cr.relu(h1 @ w2 + b2)
            return cross_entropy(h2 @ w3 + b3, t)  # t: one-hot rows, taken with the batch

        self.step_fn = api["compile"](loss)
        self.onehot: np.ndarray | None = None

    def logits(self, x: np.ndarray) -> np.ndarray:
        w1, b1, w2, b2, w3, b3 = self.params
        return np.maximum(np.maximum(x @ w1 + b1, 0.0) @ w2 + b2, 0.0) @ w3 + b3

    def loss(self, x: np.ndarray, labels: np.ndarray) -> float:
        return NumpyMLP([tuple(self.params[i : i + 2]) for i in (0, 2, 4)]).loss(x, labels)

    def fit(self, data: Digits, batches: list[list[np.ndarray]]) -> None:
        onehot = np.eye(SIZES[-1], dtype=data.x_train.dtype)[data.y_train]  # once
        weights = [cr.Tensor(p, requires_grad=True) for p in self.params]
        for epoch in batches:
            for rows in epoch:
                _, slopes = self.step_fn(*weights, data.x_train[rows], onehot[rows])
                for w, slope in zip(self.params, slopes, strict=True):
                    w -= DIGITS_LEARNING_RATE * slope


class ChainruleTrainMLP(ChainruleMLP):
    """The same nn.MLP trained by one call of ``chainrule.train`` over all the epochs.

    ``train`` shuffles the rows with ``numpy.random.default_rng(seed).permutation`` once
    per epoch, as :func:`minibatches` does, so it sees the same batches in the same order
    (checked: it must end with the loop's weights).
    """

    def __init__(
        self,
        api: dict[str, Any],
        init: list[tuple[np.ndarray, np.ndarray]],
        dtype: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(api, init)
        self.train = api["train"]
        self.options = options  # compile=True for the compiled replay
        self.dtype = dtype  # another dtype for the parameters and the data (float32)
        if dtype is not None:
            for p in self.model.parameters():
                p.data = p.data.astype(dtype)

    def fit(self, data: Digits, batches: list[list[np.ndarray]]) -> None:
        x = data.x_train if self.dtype is None else data.x_train.astype(self.dtype)
        history = self.train(
            self.model,
            (x, data.y_train),
            loss="cross_entropy",
            optimizer="sgd",
            learning_rate=DIGITS_LEARNING_RATE,
            batch_size=BATCH,
            seed=BATCH_SEED,
            stop={"max_steps": sum(len(epoch) for epoch in batches)},
            progress=False,
            **self.options,
        )
        if history.stop_reason != "max_steps" or history.detail:  # (the message costs:
            _common.check(  # it names every one of the 17,226 scalars, so only on failure)
                False,
                f"digits: chainrule.train stopped with {history.stop_reason!r} "
                f"(detail {history.detail}): {cr.explain.stop_message(history)}",
            )


def _load_layers(params: list[Any], init: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Copy the shared start into chainrule's parameters (weight, bias per layer, in order)."""
    values = [v for layer in init for v in layer]
    _common.check(
        len(params) == len(values),
        f"nn.MLP({SIZES}) has {len(params)} parameters, expected {len(values)}",
    )
    for p, v in zip(params, values, strict=True):
        if p.shape != v.shape and p.shape == v.T.shape:
            v = v.T  # a layer that stores its weight as (out, in)
        _common.check(p.shape == v.shape, f"nn.MLP parameter shape {p.shape}, expected {v.shape}")
        p.data = np.array(v, dtype=v.dtype, order="C", copy=True)  # never share the start


class JaxMLP:
    """The same MLP as a function of its (weight, bias) pairs; ``jax.jit`` of the whole
    step (forward, ``jax.grad``, SGD update). The last, smaller batch of an epoch is a
    second compilation, made in the warm-up run."""

    def __init__(self, init: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.params = [(jax.numpy.asarray(w), jax.numpy.asarray(b)) for w, b in init]
        self._step = _jax_digits_step()

    def logits(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(_jax_logits(self.params, x))

    def loss(self, x: np.ndarray, labels: np.ndarray) -> float:
        return float(_jax_loss(self.params, x, labels))

    def step(self, x: np.ndarray, labels: np.ndarray) -> None:
        self.params = self._step(self.params, x, labels)


def _jax_logits(params: list[tuple[Any, Any]], x: Any) -> Any:
    for i, (w, b) in enumerate(params):
        x = x @ w + b
        if i < len(params) - 1:
            x = jax.nn.relu(x)
    return x


def _jax_loss(params: list[tuple[Any, Any]], x: Any, labels: Any) -> Any:
    log_p = jax.nn.log_softmax(_jax_logits(params, x), axis=1)
    return -jax.numpy.mean(jax.numpy.take_along_axis(log_p, labels[:, None], axis=1))


@functools.cache
def _jax_digits_step() -> Callable[..., Any]:
    def step(params: list[tuple[Any, Any]], x: Any, labels: Any) -> list[tuple[Any, Any]]:
        grads = jax.grad(_jax_loss)(params, x, labels)
        lr = DIGITS_LEARNING_RATE
        return [(w - lr * gw, b - lr * gb) for (w, b), (gw, gb) in zip(params, grads, strict=True)]

    return jax.jit(step)


class TorchMLP:
    """torch.nn.Linear layers, torch.optim.SGD and F.cross_entropy."""

    def __init__(self, init: list[tuple[np.ndarray, np.ndarray]]) -> None:
        dtype = getattr(torch, init[0][0].dtype.name)
        layers = []
        for i, (w, b) in enumerate(init):
            linear = torch.nn.Linear(*w.shape, dtype=dtype)
            with torch.no_grad():
                linear.weight.copy_(torch.tensor(w.T))  # torch stores (out, in)
                linear.bias.copy_(torch.tensor(b))
            layers.append(linear)
            if i < len(init) - 1:
                layers.append(torch.nn.ReLU())
        self.model = torch.nn.Sequential(*layers)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=DIGITS_LEARNING_RATE)
        self.cross_entropy = torch.nn.functional.cross_entropy

    def logits(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.model(torch.from_numpy(x)).numpy()

    def loss(self, x: np.ndarray, labels: np.ndarray) -> float:
        with torch.no_grad():
            loss = self.cross_entropy(self.model(torch.from_numpy(x)), torch.from_numpy(labels))
            return loss.item()

    def step(self, x: np.ndarray, labels: np.ndarray) -> None:
        loss = self.cross_entropy(self.model(torch.from_numpy(x)), torch.from_numpy(labels))
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()


def train(model: Any, data: Digits, batches: list[list[np.ndarray]]) -> Any:
    """The one training loop every implementation goes through (or its own ``fit``)."""
    if hasattr(model, "fit"):
        model.fit(data, batches)
        return model
    for epoch in batches:
        for rows in epoch:
            model.step(data.x_train[rows], data.y_train[rows])
    return model


def accuracy(model: Any, data: Digits) -> float:
    return float(np.mean(np.argmax(model.logits(data.x_test), axis=1) == data.y_test))


def digits_makers(init: list) -> tuple[dict[str, Callable[[], Any]], dict[str, str]]:
    """A function that builds a fresh model, per implementation; and the skipped ones."""
    makers: dict[str, Callable[[], Any]] = {"numpy": functools.partial(NumpyMLP, init)}
    skipped = {}
    api, why = chainrule_api("nn.MLP", "optim.SGD", "losses.cross_entropy")
    if api is None:
        skipped["chainrule"] = why
    else:
        makers["chainrule"] = functools.partial(ChainruleMLP, api, init)
    api, why = chainrule_api("nn.MLP", "optim.SGD", "losses.cross_entropy", "train")
    if api is None:
        skipped["chainrule.train"] = why
    else:
        makers["chainrule.train"] = functools.partial(ChainruleTrainMLP, api, init)
        makers[COMPILED] = functools.partial(ChainruleTrainMLP, api, init, compile=True)
        if init[0][0].dtype != np.float32:
            makers[COMPILED32] = functools.partial(
                ChainruleTrainMLP, api, init, dtype="float32", compile=True
            )
    api, why = chainrule_api("losses.cross_entropy", "compile")
    if api is None:
        skipped[COMPILED_LOOP] = why
    else:
        makers[COMPILED_LOOP] = functools.partial(ChainruleCompiledLoopMLP, api, init)
    if jax is not None:
        makers[JAX] = functools.partial(JaxMLP, init)
    else:
        skipped[JAX] = "not installed (pip install jax; a reference, never a dependency)"
    if torch is not None:
        makers["torch"] = functools.partial(TorchMLP, init)
    else:
        skipped["torch"] = "not installed"
    return makers, skipped


def _training_run(make: Callable[[], Any], data: Digits, batches: list) -> Callable[[], Any]:
    return lambda: train(make(), data, batches)


def bench_digits(data: Digits) -> None:
    dtype = np.dtype(ARGS.dtype)
    init = he_uniform(dtype)
    batches = minibatches(len(data.y_train), ARGS.epochs)
    makers, skipped = digits_makers(init)
    skipped.setdefault("micrograd", "a scalar engine: hours per run of this MLP")

    reference = NumpyMLP(init).loss(data.x_train, data.y_train)
    rel_tol = 1e-9 if dtype == np.float64 else 1e-5
    for name, make in makers.items():
        start = make().loss(data.x_train, data.y_train)
        _common.check(
            math.isclose(start, reference, rel_tol=1e-5 if name == COMPILED32 else rel_tol),
            f"digits: {name} starts at loss {start!r}, the hand-written numpy at {reference!r} "
            "(same weights: the loss must be the mean softmax cross-entropy)",
        )

    runs = {name: _training_run(make, data, batches) for name, make in makers.items()}
    trained = {name: run() for name, run in runs.items()}  # and a warm-up
    for name in ("chainrule.train", COMPILED, COMPILED_LOOP):  # same batches, same weights
        if name not in trained or "chainrule" not in trained:
            continue
        loop = [p.data for p in trained["chainrule"].model.parameters()]
        fit = getattr(trained[name], "params", None) or [
            p.data for p in trained[name].model.parameters()
        ]
        pairs = zip(loop, fit, strict=True)
        _common.check(
            all(np.allclose(a, b, rtol=rel_tol, atol=0) for a, b in pairs),
            f"digits: {name} ends with other weights than the loop on the same batches",
        )
    accuracies = {name: accuracy(model, data) for name, model in trained.items()}
    if COMPILED32 in accuracies:  # float32 ends elsewhere, but not far
        gap = abs(accuracies[COMPILED32] - accuracies["numpy"])
        _common.check(gap <= 2 * SAME_ACCURACY, f"digits: {COMPILED32} is {gap:.3f} off")
    timings = _common.compare(runs, repeat=REPEAT, min_time=MIN_TIME, warmup=False)
    _common.print_timings(
        f"digits MLP {'-'.join(map(str, SIZES))}, ReLU, softmax cross-entropy, batch {BATCH}, "
        f"SGD lr {DIGITS_LEARNING_RATE}, {ARGS.epochs} epochs, {dtype.name}, "
        f"{len(data.y_train)} train / {len(data.y_test)} test, {ARGS.threads} thread(s)",
        timings,
        references=["numpy", "torch"],
        unit="ms/epoch",
        scale=1e3 / ARGS.epochs,
        extra={"test accuracy": {n: f"{100 * a:.2f}%" for n, a in accuracies.items()}},
        skipped=skipped,
    )
    for name in CHAINRULE:
        _common.print_goal(
            f"{name} time per epoch vs PyTorch",
            _common.seconds_ratio(timings, name, "torch"),
            1.0,
            _common.why_skipped(skipped, name, "torch"),
        )
        if name in accuracies and "torch" in accuracies:
            gap = abs(accuracies[name] - accuracies["torch"])
            same = "yes" if gap <= SAME_ACCURACY else "NO"
            print(
                f"  goal: {name}, the same accuracy as PyTorch (within "
                f"{100 * SAME_ACCURACY:g} points): {100 * gap:.2f} points apart  {same}"
            )
    _common.print_median_goal(
        "chainrule.train time per epoch vs the bare chainrule loop (issue 13: within 10%)",
        _common.round_ratios(timings, "chainrule.train", "chainrule"),
        1.1,
        _common.why_skipped(skipped, "chainrule.train", "chainrule"),
    )
    for name, note in (
        (COMPILED, "issue 13; moonshot 0.7x"),
        (COMPILED_LOOP, "a reference: compile(fn) in a loop of its own, with a numpy update"),
        (COMPILED32, "float32"),
        (JAX, "the issue's figure for jax.jit"),
    ):
        _common.print_median_goal(
            f"{name} time per epoch vs hand-written numpy ({note})",
            _common.round_ratios(timings, name, "numpy"),
            0.85,
            _common.why_skipped(skipped, name) or "not run (float32 data)",
        )


# ---------------------------------------------------------------------------------------
# 3. Peak memory of the digits run, one process per implementation
# ---------------------------------------------------------------------------------------


def memory_worker(impl: str) -> None:
    """Run in a fresh process: measure one implementation's digits training, print JSON."""
    data = load_digits(np.dtype(ARGS.dtype))
    assert data is not None, "the parent checks for scikit-learn"
    init = he_uniform(np.dtype(ARGS.dtype))
    batches = minibatches(len(data.y_train), ARGS.epochs)
    makers, _ = digits_makers(init)  # everything is imported before the baseline
    run = _training_run(makers[impl], data, batches)
    rss, method = _common.peak_rss(run)
    traced = None if impl == "torch" else _common.peak_traced(run)
    print(json.dumps({"rss": rss, "rss_method": method, "traced": traced}))


def bench_memory() -> None:
    _, skipped = digits_makers(he_uniform(np.dtype(ARGS.dtype)))
    results = {}
    for impl in IMPLEMENTATIONS:
        if impl in skipped:
            continue
        command = [
            sys.executable,
            __file__,
            "--memory-worker",
            impl,
            "--threads",
            str(ARGS.threads),
            "--epochs",
            str(ARGS.epochs),
            "--dtype",
            ARGS.dtype,
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            sys.stderr.write(done.stderr)
            raise SystemExit(f"memory: the {impl} worker failed (exit {done.returncode})")
        results[impl] = json.loads(done.stdout.strip().splitlines()[-1])

    def mib(n: int | None) -> str:
        return "-" if n is None else f"{n / 2**20:.2f}"

    def numpy_ratio(impl: str, key: str) -> str:
        if "numpy" not in results:
            return "-"
        return _common.ratio(results[impl][key], results["numpy"][key])

    print(
        f"\n-- peak memory of the digits run ({ARGS.epochs} epochs, {ARGS.dtype}), "
        "each implementation in its own process"
    )
    rows = [
        [
            impl,
            mib(r["rss"]),
            numpy_ratio(impl, "rss"),
            mib(r["traced"]) if r["traced"] is not None else "n/a",
            numpy_ratio(impl, "traced"),
        ]
        for impl, r in results.items()
    ]
    headers = ["implementation", "peak RSS MiB", "vs numpy", "tracemalloc MiB", "vs numpy"]
    _common.print_table(headers, rows)
    for impl, why in skipped.items():
        print(f"  {impl}: skipped ({why})")
    methods = {r["rss_method"] for r in results.values()}
    for text in (
        f"{_common.RSS_MEANING}; measured as {', '.join(sorted(methods))}.",
        f"{_common.TRACED_MEANING}.",
    ):
        print(textwrap.fill(text, width=96, initial_indent="  ", subsequent_indent="    "))
    for name in CHAINRULE:
        for key, label in (("traced", "tracemalloc"), ("rss", "peak RSS")):
            value = None
            if name in results and "numpy" in results:
                a, b = results[name][key], results["numpy"][key]
                value = a / b if a is not None and b else None
            _common.print_goal(
                f"{name} peak memory ({label}) vs the hand-written numpy",
                value,
                1.5,
                _common.why_skipped(skipped, name) or "no figure",
            )


# ---------------------------------------------------------------------------------------


def main() -> None:
    if _WORKER is not None:
        memory_worker(_WORKER)
        return
    _common.print_header("chainrule training benchmarks", ARGS.threads, torch, Value)
    clock = "CPU time of the process" if ARGS.threads == 1 else "wall clock"
    print(f"  clock: {clock}")
    sections = ARGS.only or list(SECTIONS)
    if "seed" in sections:
        bench_seed()
    if "digits" in sections or "memory" in sections:
        data = load_digits(np.dtype(ARGS.dtype))
        if data is None:
            print("\n-- digits: skipped (scikit-learn is not installed: pip install scikit-learn)")
            return
        if "digits" in sections:
            bench_digits(data)
        if "memory" in sections:
            bench_memory()


if __name__ == "__main__":
    try:
        main()
    except _common.BenchmarkError as exc:
        raise SystemExit(f"benchmark check failed: {exc}") from None
