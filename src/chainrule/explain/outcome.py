"""How a run ended, in one sentence with the run's own numbers.

Training records facts (the stop rule that fired, and for a diverged run a
:class:`~chainrule.history.Divergence` record); this module writes the sentence that the
ledger, the diagnosis, the figures and the command line print.

>>> from chainrule.scenario import load_scenario
>>> stop_message(load_scenario("main-ideas").run().history)
'b3 = 2.61 after 10 steps: every step size is below 0.001'
"""

from __future__ import annotations

import math

from chainrule.history import Divergence, History
from chainrule.text import significant

#: Up to this many trained scalars, the sentence gives their final values.
NAMED_SCALARS = 3

#: How a remedy is written: ``"python"``, as the API's keywords (the default),
#: ``"cli"``, as the command line's options (``--set train.learning_rate=0.1``), or
#: ``"page"``, as the playground's controls (``Learning rate 0.1``).
STYLES = ("python", "cli", "page")

#: The playground's controls for the training settings a remedy may change (step_size
#: has none: it is set in the scenario's text).
PAGE_CONTROLS = {"learning_rate": "Learning rate", "max_steps": "Max steps"}

#: The scenario keys (for ``--set``) of the settings a remedy may change.
SETTING_KEYS = {
    "learning_rate": "train.learning_rate",
    "max_steps": "train.stop.max_steps",
    "step_size": "train.stop.step_size",
    "activation": "model.activation",
}


def setting(key: str, value: str, style: str = "python") -> str:
    """How the reader changes the setting ``key`` to ``value`` (a number or a name, as
    text), in ``style`` (one of :data:`STYLES`); a name is quoted where Python and the
    scenario's TOML need it.

    >>> setting("learning_rate", "0.01"), setting("step_size", "1e-05")
    ('learning_rate=0.01', 'stop={"step_size": 1e-05}')
    >>> setting("learning_rate", "0.01", "cli"), setting("max_steps", "2000", "cli")
    ('--set train.learning_rate=0.01', '--set train.stop.max_steps=2000')
    >>> setting("learning_rate", "0.01", "page"), setting("step_size", "1e-05", "page")
    ('Learning rate 0.01', 'step_size = 1e-05 under [train.stop] in the scenario')
    >>> setting("activation", "leaky_relu"), setting("activation", "leaky_relu", "cli")
    ('activation="leaky_relu"', '--set model.activation=leaky_relu')
    >>> setting("activation", "leaky_relu", "page")
    'activation = "leaky_relu" under [model] in the scenario'
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    if style == "cli":
        return f"--set {SETTING_KEYS[key]}={value}"
    written = value if _is_number(value) else f'"{value}"'
    if style == "page":
        if key in PAGE_CONTROLS:
            return f"{PAGE_CONTROLS[key]} {value}"
        table = SETTING_KEYS[key].rsplit(".", 1)[0]
        return f"{key} = {written} under [{table}] in the scenario"
    if key in ("max_steps", "step_size"):
        return f'stop={{"{key}": {value}}}'
    return f"{key}={written}"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def stop_message(history: History, style: str = "python") -> str:
    """Why ``history``'s run stopped, with where it ended; a remedy is written in
    ``style`` (:data:`STYLES`)."""
    reason, stop = history.stop_reason, history.stop
    if reason == "diverged":
        assert history.divergence is not None
        return diverged_message(history, history.divergence, style)
    if reason == "max_steps" and stop.max_steps == 0:
        return (
            "nothing was trained (max_steps = 0): the model keeps its starting values "
            f"(the loss is {significant(history.final_loss)})"
        )
    summary = _summary(history)
    if reason == "step_size":
        return f"{summary}: every step size is below {stop.step_size:g}"
    if reason == "loss":
        return f"{summary}: the loss {significant(history.final_loss)} is below {stop.loss:g}"
    return (
        f"{summary}: reached the limit of {stop.max_steps} steps "
        f"(the loss is {significant(history.final_loss)})"
    )


def steps_text(n: int) -> str:
    """``1 step``, ``10 steps``.

    >>> steps_text(1), steps_text(2)
    ('1 step', '2 steps')
    """
    return f"{n} step" if n == 1 else f"{n} steps"


def non_finite_text(x: float) -> str:
    """What a number that is not finite is, in words.

    >>> non_finite_text(float("nan")), non_finite_text(float("-inf"))
    ('NaN (not a number)', 'infinite (-inf)')
    """
    if math.isnan(x):
        return "NaN (not a number)"
    return "infinite" if x > 0 else "infinite (-inf)"


def _summary(history: History) -> str:
    """``b3 = 2.61 after 10 steps`` for a few scalars, else ``trained 7 parameters for ...``."""
    steps = steps_text(history.num_steps)
    names = history.trained
    if len(names) <= NAMED_SCALARS:
        final = history.final_values
        shown = ", ".join(f"{name} = {significant(final[name])}" for name in names)
        return f"{shown} after {steps}"
    return f"trained {len(names)} parameters for {steps}"


def diverged_message(history: History, problem: Divergence, style: str = "python") -> str:
    """Why a run diverged, in one sentence with the run's own numbers; the learning rate
    to try is written in ``style`` (:data:`STYLES`: the command line's says ``--set
    train.learning_rate=0.1``).

    >>> from array import array
    >>> h = History([("b3", ())], "ssr", False, 1.0, losses=array("d", [20.4, 510.0]))
    >>> diverged_message(h, Divergence("growth", loss=3.1e12))
    'the loss grew from 20.4 to 3.1e+12 in 2 steps: the learning rate 1.0 is too large for \
this loss; try 0.1'
    >>> h = History([("b3", ())], "ssr", False, 1e308)
    >>> diverged_message(h, Divergence("step", float("inf"), "b3", 20.4, -15.7))
    'step 1 would make b3 infinite, although its slope (-15.7) and the loss (20.4) are \
finite: the learning rate 1e+308 is too large for this loss; try 1e+307'
    """
    losses, lr = history.losses, history.learning_rate
    n = len(losses)
    rate, smaller = significant(lr, point=True), significant(lr / 10, point=True)
    instead = smaller if style == "python" else setting("learning_rate", smaller, style)
    too_large = f"the learning rate {rate} is too large for this loss; try {instead}"
    state = non_finite_text(problem.value)
    if problem.kind == "growth":
        start, end = significant(losses[0]), significant(problem.loss)
        grew = f"the loss grew from {start} to {end} in {steps_text(n)}"
        return f"{grew}: {too_large}"
    if problem.kind == "step":
        return (
            f"step {n + 1} would make {problem.name} {state}, although its slope "
            f"({significant(problem.slope)}) and the loss ({significant(problem.loss)}) are "
            f"finite: {too_large}"
        )
    subject = "the loss" if problem.kind == "loss" else f"the slope of {problem.name}"
    if n == 0:
        return (
            f"{subject} is {state} at the starting values: check the data and the starting values"
        )
    first, last = losses[0], losses[-1]
    if last > first:
        return (
            f"the loss grew from {significant(first)} to {significant(last)} in "
            f"{steps_text(n)}, then {subject} became {state}: {too_large}"
        )
    return (
        f"{subject} became {state} after {steps_text(n)} (the loss was {significant(last)}): check "
        f"the data, the starting values and the learning rate {rate}"
    )
