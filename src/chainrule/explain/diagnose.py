"""Diagnosis: what a training run did, in plain words, with the reason when it can be found.

A run *converged* (a stop rule fired near the lowest point), *stalled* (the learning rate
is too small to change the parameters: every step size is below the spacing of float64
numbers near the value, ``np.spacing``), is mostly *dead* (most slopes exactly 0 from some
step on: dead ReLU units, named with the step since which they are dead), *diverged* (the loss grew
without bound), *oscillated* (the slope changed sign every step up to the step limit) or
*crawled* (it hit the step limit taking small steps, or a step-size rule stopped it early:
far from the best value, or while the loss was still falling fast); a run told to take
no step (``max_steps = 0``) is *untrained*. The reason comes from
the history itself: when the ratio of successive slopes is constant, each step multiplies
the distance to the best value by that ratio. For a bias under the SSR with plain gradient
descent the ratio is ``1 - 2 n lr`` (the loss is a parabola of curvature ``2 n`` in the
bias), so the seed's learning rate 0.1 with 3 data points gives 0.4, and any learning rate
above ``1/n`` diverges.

>>> from chainrule.datasets import dosage
>>> from chainrule.formula import Formula
>>> from chainrule.training import train
>>> model = Formula("predicted = 0 * dosage + b", inputs=["dosage"])
>>> diagnose(train(model, dosage(), learning_rate=0.1, stop={"step_size": 0.001})).factor
0.4
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.explain.document import Document, Explanation, Paragraph
from chainrule.explain.outcome import setting, stop_message
from chainrule.history import DIVERGED_GROWTH, History
from chainrule.losses import LOSSES
from chainrule.nn.module import scalar_name
from chainrule.text import constant, decimals, significant

#: The kinds of run a diagnosis tells apart. ``stalled``: the learning rate is too small
#: to move the parameters at all; ``dead``: most slopes are exactly 0 from some step on
#: (dead ReLU units), so most parameters stopped moving although the loss is not at 0.
KINDS = (
    "converged",
    "diverged",
    "growing",
    "oscillating",
    "crawling",
    "stalled",
    "dead",
    "untrained",
)
#: How many of the last steps must flip the slope's sign to call a run oscillating.
OSCILLATION_STEPS = 6
#: How close successive slope ratios must be to count as one constant factor.
RATIO_TOLERANCE = 1e-6
#: A step-size rule that fires more than this many last steps away from the best value
#: stopped the run early: the steps were small because the learning rate was.
FAR = 10
#: A slope whose step of the size of its value would change the loss by less than this
#: fraction of the loss is rounding noise, not a slope the learning rate fails to follow.
SLOPE_NOISE = 1e-8
#: A run whose loss would still fall by more than this fraction of its starting value (at
#: its last rate) was stopped early, or still crawls.
STILL_FALLING = 1e-3


@dataclass(frozen=True)
class Diagnosis(Explanation):
    """``kind`` (one of :data:`KINDS`) and a ``message`` in plain words.

    ``factor`` is what each step multiplies the distance to the best value by, and
    ``learning_rate_limit`` the learning rate below which the run converges, when the
    history shows them (one trained scalar, a constant ratio of successive slopes).
    """

    kind: str
    message: str
    factor: float | None = None
    learning_rate_limit: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{"kind", "message"}``, plus ``"factor"`` and ``"learning_rate_limit"`` if known."""
        out: dict[str, Any] = {"kind": self.kind, "message": self.message}
        if self.factor is not None:
            out["factor"] = self.factor
        if self.learning_rate_limit is not None:
            out["learning_rate_limit"] = self.learning_rate_limit
        return out

    def document(self) -> Document:
        return (Paragraph(self.message),)


@dataclass(frozen=True)
class _Contraction:
    """A constant ratio of successive slopes, and what it means for one parameter."""

    parameter: str
    factor: float
    curvature: float  # c in factor = 1 - c lr: the loss's second derivative in the parameter
    best: float  # where the slope would be 0
    distance: float  # how far the last value is from it
    why: str  # "1 - 2 x 3 x 0.1"
    limit: str  # "1/3 = 0.3333"
    limit_value: float  # learning rates below it converge: 2 / curvature

    def sentence(self) -> str:
        p, factor = self.parameter, significant(self.factor, 4)
        return f"Each step multiplies the distance to the best {p} by {factor} (= {self.why})"

    def advice(self, style: str = "python") -> str:
        one_step = significant(1 / self.curvature, 4)
        told = "" if style == "python" else f" ({setting('learning_rate', one_step, style)})"
        return (
            f"Learning rates below {self.limit} converge, and {one_step} would "
            f"land on the best {self.parameter} ({decimals(self.best)}) in one step{told}."
        )


def diagnose(history: History, style: str = "python") -> Diagnosis:
    """Say in plain words how ``history``'s run went, and why when the history shows it.

    A remedy (a learning rate to try) is written in ``style``: ``"python"`` as
    :func:`~chainrule.training.train`'s keywords, ``"cli"`` as the command line's
    ``--set`` options (:func:`~chainrule.explain.outcome.setting`).

    >>> from chainrule.datasets import dosage
    >>> from chainrule.formula import Formula
    >>> from chainrule.training import train
    >>> model = Formula("predicted = 0 * dosage + b", inputs=["dosage"])
    >>> d = diagnose(train(model, dosage(), learning_rate=1.0))
    >>> d.kind, d.learning_rate_limit
    ('diverged', 0.3333333333333333)
    """
    if history.stop_reason == "max_steps" and history.stop.max_steps == 0:
        return Diagnosis("untrained", f"Nothing to diagnose: {stop_message(history, style)}.")
    d = _diagnose(history, style)
    dead = _dead(history) if d.kind not in ("dead", "stalled", "diverged") else None
    if dead is None:
        return d
    told = f"{d.message} {dead.sentence(style)}"
    return Diagnosis(d.kind, told, d.factor, d.learning_rate_limit)


def _diagnose(history: History, style: str) -> Diagnosis:
    """The diagnosis of the run as a whole (see :func:`diagnose`)."""
    slopes = _slopes(history)
    contraction = _contraction(history, slopes)
    factor = None if contraction is None else contraction.factor
    limit = None if contraction is None else contraction.limit_value
    said = f": {stop_message(history, style)}."
    overshoots = (
        f" {contraction.sentence()}: every step overshoots the best "
        f"{contraction.parameter} by more than it was off. {contraction.advice(style)}"
        if contraction is not None
        else ""
    )
    if history.diverged:  # training's one rule: the diagnosis does not have its own
        return Diagnosis("diverged", f"The run diverged{said}{overshoots}", factor, limit)
    stalled = _stalled(history, style)
    if stalled is not None:
        return Diagnosis("stalled", f"The run did not converge{said} {stalled}")
    dead = _dead(history)
    if dead is not None and dead.most:
        return Diagnosis("dead", f"The run did not converge{said} {dead.sentence(style)}")
    if _growing(history, factor):
        text = (
            f"The loss grows{said} The run is on its way to diverging: training stops a run "
            f"as diverged once its loss is {DIVERGED_GROWTH:.0e} times the first, and this "
            "one ended before that."
        )
        return Diagnosis("growing", text + (overshoots or _smaller(history, style)), factor, limit)
    flipping = [name for name, s in slopes.items() if _alternates(s)]
    remaining = _remaining_fall(history)
    if history.stop_reason in ("step_size", "loss"):
        early = _stopped_early(history, contraction, remaining, style)
        if early is not None:
            return Diagnosis("crawling", f"The run stopped early{said} {early}", factor, limit)
        text = f"The run converged{said}"
        if contraction is not None and contraction.factor < 0:
            flipping = [contraction.parameter]
        if flipping:
            names = ", ".join(flipping)
            text += (
                f" It oscillated on the way: the slope of {names} changed sign at every step, "
                "so each step jumped over the lowest point and landed closer to it."
            )
        if contraction is not None:
            text += (
                f" {contraction.sentence()}, so the slope and the step size shrink by that "
                f"factor every step."
            )
        return Diagnosis("converged", text, factor, limit)
    if flipping:
        names = ", ".join(flipping)
        text = (
            f"The run oscillates{said} The slope of {names} changes sign every step: each "
            "step jumps over the lowest point."
        )
        if contraction is not None:
            closer = (
                "so it never gets closer"
                if abs(contraction.factor) > 1 - RATIO_TOLERANCE
                else "so it zig-zags closer, slowly"
            )
            text += f" {contraction.sentence()}, {closer}. {contraction.advice(style)}"
        else:
            text += _smaller(history, style)
        return Diagnosis("oscillating", text, factor, limit)
    last_steps = [abs(v) for record in history.steps[-1:] for v in record.step_sizes.values()]
    text = f"The run crawls{said}"
    if last_steps:
        text += f" The last step sizes are at most {decimals(max(last_steps))}."
    if remaining is not None and _still_falling(history, remaining):
        text += f" {_falling_sentence(history, remaining)}"
    if contraction is not None and 0 < contraction.factor < 1 and contraction.distance > 0:
        text += (
            f" {contraction.sentence()}: {_steps_needed(contraction)} more steps would "
            f"bring it within 0.001 of the best {contraction.parameter}. "
            f"{contraction.advice(style)}"
        )
    else:
        text += _larger(history, style)
    return Diagnosis("crawling", text, factor, limit)


def _stalled(history: History, style: str) -> str | None:
    """What to say when the learning rate is too small to move anything: some slope is not
    0 (nor rounding noise), yet at every step every step size is below the spacing of
    float64 numbers near the value (``np.spacing`` of the value, or of 1 for values smaller
    than 1), so the values do not change, or change in no digit that counts."""
    if not history.steps:
        return None
    a = history.steps.arrays()
    slopes, sizes, values = a["slopes"], a["step_sizes"], a["values"]
    if not (np.all(np.isfinite(slopes)) and np.any(slopes != 0)):
        return None
    spacing = np.spacing(np.maximum(np.abs(values), 1.0))
    if not np.all(np.abs(sizes) < spacing):
        return None
    # A slope that is rounding noise (a run that starts at its lowest point) is not one
    # that a larger learning rate would follow: the slopes must matter at the loss's scale.
    losses = history.losses_with_final()
    scale = float(np.max(np.abs(losses))) if np.all(np.isfinite(losses)) else 0.0
    if not np.any(np.abs(slopes) * np.maximum(np.abs(values), 1.0) > SLOPE_NOISE * scale):
        return None
    last = slopes[-1]
    j = int(np.argmax(np.abs(last)))
    name = history.trained[j]
    lr = float(history.learning_rate)
    top = float(np.max(np.abs(last)))
    if history.plain_gradient_descent and top > 0:
        # a first step of about 0.1 in the value with the largest slope
        suggest = 10.0 ** math.floor(math.log10(0.1 / top))
    else:
        suggest = 0.001
    rate = significant(suggest, point=True)
    return (
        f"The learning rate {significant(lr)} is too small to move the parameters: the slope "
        f"of {name} is {significant(last[j])}, but its step size ({significant(sizes[-1, j])}) "
        f"is below the spacing of float64 numbers near {name} ({significant(spacing[-1, j])}, "
        f"np.spacing), so {name} does not change in any digit that counts. Try a larger "
        f"learning rate: {setting('learning_rate', rate, style)}."
    )


@dataclass(frozen=True)
class _Dead:
    """Trained scalars whose slope is exactly 0 from some step to the end of the run."""

    names: list[str]  # the scalars with slope 0, in the History's order
    since: int  # the step from which all of them have slope 0
    total: int  # how many scalars were trained
    units: list[str]  # "units 0 and 1 of layer hidden": all incoming weights and bias at 0

    @property
    def most(self) -> bool:
        """Most slopes, but not all, are 0: the few others trained on alone. (All of them
        at 0 is a flat point of the loss, which may be its lowest point.)"""
        return self.total > len(self.names) > self.total / 2

    def sentence(self, style: str = "python") -> str:
        n = len(self.names)
        shown = ", ".join(self.names[:DEAD_SHOWN]) + (", ..." if n > DEAD_SHOWN else "")
        what = "slope is" if n == 1 else "slopes are"
        if n == self.total:
            text = (
                f"Every slope is exactly 0 since step {self.since} ({shown}), so nothing "
                "moves: the loss is flat there. That is its lowest point, or dead units."
            )
        else:
            text = (
                f"{n} of {self.total} {what} exactly 0 since step {self.since} ({shown}), so "
                f"{'that parameter does' if n == 1 else 'those parameters do'} not move."
            )
        if self.units:
            text += f" Dead units: {'; '.join(self.units)}."
        return text + (
            " A slope of exactly 0 is what a ReLU passes back when its input is negative on "
            "every data point (a dead unit): "
            "start from other values (or another seed), use a smaller learning rate, or an "
            f"activation that keeps a slope (softplus, or leaky_relu: {self.leaky(style)})."
        )

    def leaky(self, style: str) -> str:
        """How the reader trades the ReLUs for leaky ones, in ``style``: a layer model's
        activation (its dead units are named), or a formula's function."""
        if not self.units:
            return "write leaky_relu(...) in the formula where it says relu(...)"
        return setting("activation", "leaky_relu", style)


#: How many of the scalars with slope 0 the diagnosis names.
DEAD_SHOWN = 8


def _dead(history: History) -> _Dead | None:
    """The scalars whose slope is exactly 0 at every step from some step on (for at least
    two steps, or since the first), unless every slope is 0 because the loss is 0."""
    if not history.steps:
        return None
    slopes = history.steps.arrays()["slopes"]
    n = len(slopes)
    zero = slopes == 0
    trailing = np.cumprod(zero[::-1], axis=0).sum(axis=0)  # zero slopes at the end, per scalar
    stuck = trailing >= min(2, n)
    if not np.any(stuck) or (np.all(stuck) and history.final_loss == 0):
        return None
    names = [name for name, s in zip(history.trained, stuck, strict=True) if s]
    since = int(n - trailing[stuck].min() + 1)
    return _Dead(names, since, len(history.trained), _dead_units(history, set(names)))


def _dead_units(history: History, dead: set[str]) -> list[str]:
    """The units of layers (``L.weight`` of shape (in, out) and ``L.bias`` of shape (out,))
    whose incoming weights and bias all have slope 0, as ``units 0 and 1 of layer L``."""
    shapes = dict(history.parameters)
    units: list[str] = []
    for name, shape in history.parameters:
        if not name.endswith(".bias") or len(shape) != 1:
            continue
        layer = name.removesuffix(".bias")
        weight = shapes.get(f"{layer}.weight", ())
        if len(weight) != 2 or weight[1] != shape[0]:
            continue
        found = [
            str(j)
            for j in range(shape[0])
            if scalar_name(name, (j,)) in dead
            and all(scalar_name(f"{layer}.weight", (i, j)) in dead for i in range(weight[0]))
        ]
        if found:
            which = found[0] if len(found) == 1 else f"{', '.join(found[:-1])} and {found[-1]}"
            units.append(f"unit{'s' * (len(found) > 1)} {which} of layer {layer}")
    return units


def _smaller(history: History, style: str) -> str:
    """`` Try a smaller learning rate.``, with one to try in the command line's words."""
    if style == "python" or history.learning_rate is None:
        return " Try a smaller learning rate."
    lr = significant(history.learning_rate / 10, point=True)
    return f" Try a smaller learning rate: {setting('learning_rate', lr, style)}."


def _larger(history: History, style: str) -> str:
    """`` Try a larger learning rate, or more steps.``, with values in the command line's
    words."""
    if style == "python" or history.learning_rate is None:
        return " Try a larger learning rate, or more steps."
    lr = significant(history.learning_rate * 2, point=True)
    steps = str(2 * history.stop.max_steps)
    return (
        f" Try a larger learning rate ({setting('learning_rate', lr, style)}) or more steps "
        f"({setting('max_steps', steps, style)})."
    )


def _growing(history: History, factor: float | None) -> bool:
    """Whether the loss grows without bound although training did not (yet) call the run
    diverged: a ratio of slopes beyond -1 or 1, or a loss that keeps growing and has more
    than doubled."""
    if factor is not None and abs(factor) > 1:
        return True
    losses = history.losses_with_final()
    if len(losses) < 3:
        return False
    return bool(losses[-1] > 2 * losses[0] and np.all(np.diff(losses[-3:]) > 0))


def _stopped_early(
    history: History,
    contraction: _Contraction | None,
    remaining: tuple[float, float, int] | None,
    style: str = "python",
) -> str | None:
    """Why a run that a step-size rule stopped is not at its lowest point yet, if it is not.

    With a constant ratio of slopes the best value is known: the run stopped early when it
    is more than :data:`FAR` last steps away from it. Otherwise, when the loss was still
    falling so steadily that it would fall by more than :data:`STILL_FALLING` of its
    starting value.
    """
    if history.stop_reason != "step_size" or not history.steps:
        return None
    last = [abs(v) for v in history.steps[-1].step_sizes.values()]
    if contraction is not None:
        c, p = contraction, contraction.parameter
        if not last or c.distance <= FAR * max(last):
            return None
        text = (
            f"The step size is small because the learning rate is small, not because {p} "
            f"is near its best value: {p} = {decimals(history.steps[-1].new_values[p])} is "
            f"still {decimals(c.distance)} from the best {p} ({decimals(c.best)}). "
            f"{c.sentence()}, so it crawls"
        )
        if 0 < c.factor < 1:
            text += f": about {_steps_needed(c)} more steps would bring it within 0.001"
        return f"{text}. {c.advice(style)}"
    if remaining is None or not _still_falling(history, remaining):
        return None
    remedy = "try a larger learning rate, or a smaller step_size in stop"
    if style != "python" and history.learning_rate is not None:
        lr = significant(history.learning_rate * 2, point=True)
        step = significant(history.stop.step_size / 10, point=True)
        remedy = (
            f"try a larger learning rate ({setting('learning_rate', lr, style)}) or a smaller "
            f"step size to stop at ({setting('step_size', step, style)})"
        )
    return (
        f"{_falling_sentence(history, remaining)} The steps are small, but the run is not "
        f"at the lowest point: {remedy}."
    )


def _scale(history: History) -> float:
    """The size of the loss the run started from (what 'still falling fast' compares with)."""
    losses = history.losses_with_final()
    return float(abs(losses[0])) if len(losses) and np.isfinite(losses[0]) else 0.0


def _remaining_fall(history: History) -> tuple[float, float, int] | None:
    """How much further the loss would fall if its fall kept shrinking as it did over the
    last window of steps (a geometric series): (that amount, the last window's fall, the
    window's length in steps). None unless the loss fell in both of the last two windows.
    A window is a tenth of the run (1 to 50 steps), so a noisy step does not decide it.
    """
    losses = history.losses_with_final()
    k = min(max(len(losses) // 10, 1), 50)
    if len(losses) < max(2 * k + 1, 4) or not np.all(np.isfinite(losses[-2 * k - 1 :])):
        return None
    before = losses[-2 * k - 1] - losses[-k - 1]
    last = losses[-k - 1] - losses[-1]
    if not (before > 0 and last > 0):
        return None
    ratio = last / before
    remaining = math.inf if ratio >= 1 else float(last * ratio / (1 - ratio))
    return remaining, float(last), k


def _still_falling(history: History, fall: tuple[float, float, int] | None) -> bool:
    return fall is not None and fall[0] > STILL_FALLING * _scale(history)


def _falling_sentence(history: History, fall: tuple[float, float, int]) -> str:
    remaining, last, k = fall
    steps = "the last step" if k == 1 else f"the last {k} steps"
    if math.isinf(remaining):
        return (
            f"The loss was still falling, and not slowing down: it fell by {decimals(last)} "
            f"over {steps}, to {decimals(history.final_loss)}."
        )
    return (
        f"The loss was still falling: it fell by {decimals(last)} over {steps}, and at that "
        f"rate it would fall by about {decimals(remaining)} more, from "
        f"{decimals(history.final_loss)}."
    )


def _steps_needed(c: _Contraction) -> int:
    """How many more steps bring a parameter within 0.001 of its best value."""
    return max(math.ceil(math.log(1e-3 / c.distance) / math.log(c.factor)), 1)


def _slopes(history: History) -> dict[str, np.ndarray]:
    """Each trained scalar's slope at every recorded step."""
    if not history.steps:
        return {}
    slopes = history.steps.arrays()["slopes"]  # (steps, scalars): read, no record built
    return {name: slopes[:, j] for j, name in enumerate(history.trained)}


def _alternates(slopes: np.ndarray) -> bool:
    """Whether the slope changed sign at every one of the last steps."""
    last = np.sign(slopes[-OSCILLATION_STEPS:])
    return len(last) >= 4 and bool(np.all(last[1:] * last[:-1] < 0))


def _contraction(history: History, slopes: dict[str, np.ndarray]) -> _Contraction | None:
    """The constant slope ratio of a one-scalar run of plain gradient descent, if any."""
    if len(slopes) != 1 or len(history.steps) < 3 or not history.plain_gradient_descent:
        return None
    ((name, s),) = slopes.items()
    if np.any(s == 0) or not np.all(np.isfinite(s)):
        return None
    lr = float(history.learning_rate)
    steps = history.steps.arrays()["step_sizes"][:, history.trained.index(name)]
    if not np.allclose(steps, lr * s, rtol=1e-9, atol=0):
        return None  # not plain gradient descent: the step is not slope x learning rate
    ratios = s[1:] / s[:-1]
    factor = float(np.median(ratios))
    if not np.allclose(ratios, factor, rtol=0, atol=RATIO_TOLERANCE * max(1.0, abs(factor))):
        return None
    factor = round(factor, 12)  # 0.39999999999999997 is 0.4
    curvature = (1 - factor) / lr
    if curvature <= 0:
        return None
    first, last = history.steps[0], history.steps[-1]
    # The first step: before a diverging run's values grow too large to subtract.
    best = first.values[name] - first.slopes[name] / curvature
    n = len(last.predictions) if last.predictions is not None else len(history.final_predictions)
    # A loss whose rows curve alike (squared residuals) along a parameter that shifts every
    # prediction by the same amount (an output bias): the curvature is the row's, summed.
    loss = LOSSES.get(history.loss_name)
    row = None if loss is None else loss.curvature
    rows = n if loss is not None and loss.reduction == "sum" else 1
    if row is not None and math.isclose(curvature, row * rows, rel_tol=1e-6):
        limit_value = 2 / (row * rows)
        if rows == 1:
            why, limit = f"1 - {constant(row)} x {lr:g}", constant(2 / row)
        else:
            why = f"1 - {constant(row)} x {n} x {lr:g}"
            limit = f"{constant(2 / row)}/{n} = {significant(limit_value, 4)}"
    else:
        limit_value = 2 / curvature
        why, limit = f"1 - {significant(curvature, 4)} x {lr:g}", significant(limit_value, 4)
    distance = abs(last.new_values[name] - best)
    return _Contraction(name, factor, curvature, best, distance, why, limit, limit_value)
