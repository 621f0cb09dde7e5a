"""Which steps of a run a figure shows.

Figures never touch the user's model: they draw from copies made through the model
protocol (``model.at(history.values_after(k))``) and read the History's answers (its
losses, its one divergence rule). What is left here is the figures' own choice: which
steps a figure names and shows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from chainrule.errors import ChainruleError
from chainrule.explain.outcome import stop_message
from chainrule.history import History

#: How a step is named: a number of steps taken (0 = the start), "start" or "end".
StepSpec = int | str


def resolve_steps(history: History, steps: Sequence[StepSpec] | StepSpec | None) -> list[int]:
    """Turn ``"start"``, ``"end"``, numbers of steps and negative indices into counts.

    >>> from chainrule.scenario import load_scenario
    >>> resolve_steps(load_scenario("main-ideas").run().history, ["start", 3, "end", -2])
    [0, 3, 10, 9]
    """
    total = history.num_steps
    if steps is None:
        steps = ["start", "end"]
    if isinstance(steps, int | str):
        steps = [steps]
    counts: list[int] = []
    for spec in steps:
        if isinstance(spec, str):
            word = spec.strip().lower()
            if word in ("start", "first", "begin"):
                count = 0
            elif word in ("end", "last", "final"):
                count = total
            else:
                try:
                    count = int(word)
                except ValueError:
                    raise ChainruleError(
                        f"step {spec!r}: use a number of steps (0 to {total}), 'start' or 'end'"
                    ) from None
        elif isinstance(spec, int | np.integer) and not isinstance(spec, bool):
            count = int(spec)
        else:
            raise ChainruleError(f"step {spec!r}: use a number of steps, 'start' or 'end'")
        if count < 0:
            count += total + 1
        if not 0 <= count <= total:
            raise ChainruleError(
                f"step {spec!r}: the history has {total} steps; choose 0 (the start) to {total}"
            )
        if count not in counts:
            counts.append(count)
    return counts


#: Of a diverged run, figures show the steps while the loss is within this factor of its
#: start: the first overshoots are the lesson, and they would vanish on an axis reaching
#: to 1e+300.
VIEW_GROWTH = 1e4
#: ... and at least this many steps, however fast the loss grows.
VIEW_MIN_STEPS = 3


def divergence(history: History | None) -> str | None:
    """``'diverged: ...'`` (training's own words) when the run diverged, else None.

    The one rule is training's (:attr:`History.diverged`): a figure never decides on its
    own that a run diverged.
    """
    if history is None or not history.diverged:
        return None
    return f"diverged: {stop_message(history)}"


def first_steps(shown: int, total: int) -> str:
    """What a figure of a diverged run leaves out, as the end of its warning.

    >>> first_steps(3, 125), first_steps(1, 5), first_steps(5, 5)
    ('; the first 3 of 125 steps are shown', '; the first step is shown', '')
    """
    if shown >= total:
        return ""
    if shown == 0:
        return "; only the start is shown"
    if shown == 1:
        return "; the first step is shown"
    return f"; the first {shown} of {total} steps are shown"


def steps_in_view(history: History) -> int:
    """How many steps a figure of the descent shows: all of them, or for a diverged run
    those before the loss passes :data:`VIEW_GROWTH` times its start (at least
    :data:`VIEW_MIN_STEPS` finite ones). The end is in view only when all steps are.

    """
    losses = np.asarray(history.losses, dtype=np.float64)
    if divergence(history) is None:
        return int(losses.size)
    shown = 0
    limit = VIEW_GROWTH * max(abs(float(losses[0])), 1e-300) if losses.size else 0.0
    for i, value in enumerate(losses):
        if not np.isfinite(value) or (value > limit and i >= VIEW_MIN_STEPS):
            break
        shown = i + 1
    return shown
