"""Reading a model and a training history without changing either.

Figures never touch the user's model: they draw from a copy set to the parameter values
that the history recorded (``History.steps[k].values`` before step ``k + 1``,
``new_values`` after it), and run the engine's forward pass on it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from chainrule.errors import ChainruleError
from chainrule.tensor import Tensor, no_grad
from chainrule.text import significant

#: How a step is named: a number of steps taken (0 = the start), "start" or "end".
StepSpec = int | str


def model_at(model: Any, values: Mapping[str, float] | None = None) -> Any:
    """A copy of ``model`` with the named scalars set to ``values`` (the model is untouched).

    >>> from chainrule.formula import Formula
    >>> m = Formula("y = w * x", inputs=["x"], values={"w": 1.0})
    >>> model_at(m, {"w": 2.0}).scalar("w").value, m.scalar("w").value
    (2.0, 1.0)
    """
    twin = copy.deepcopy(model)
    for name, value in (values or {}).items():
        twin.scalar(name).set(float(value))
    return twin


def step_count(history: Any) -> int:
    """How many steps the history took (its losses are kept even without detail)."""
    losses = getattr(history, "losses", None)
    return len(losses) if losses is not None else len(history.steps)


def values_after(history: Any, steps_taken: int) -> dict[str, float]:
    """The trained scalars' values after ``steps_taken`` steps (0 gives the start).

    Step ``k`` (counting from 1) moves ``values`` to ``new_values``; so after ``k`` steps the
    values are ``steps[k].values``, and after the last step ``steps[-1].new_values``. A
    history without per-step records knows only its final values.
    """
    steps = history.steps
    total = step_count(history)
    if steps_taken < len(steps):
        return dict(steps[steps_taken].values)
    if steps and steps_taken == len(steps):
        return dict(steps[-1].new_values)
    if steps_taken == total and getattr(history, "final_values", None):
        return dict(history.final_values)
    raise ChainruleError(
        f"the history kept no per-step values (train with detail=True), so the values "
        f"after {steps_taken} of its {total} steps are unknown; only the end can be drawn"
    )


def resolve_steps(history: Any, steps: Sequence[StepSpec] | StepSpec | None) -> list[int]:
    """Turn ``"start"``, ``"end"``, numbers of steps and negative indices into counts.

    >>> class H:
    ...     steps = [None] * 10
    >>> resolve_steps(H(), ["start", 3, "end", -2])
    [0, 3, 10, 9]
    """
    total = step_count(history)
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


def model_inputs(model: Any, data: Any) -> np.ndarray:
    """The data's (n, d) matrix with the columns the model reads, in the model's order.

    A formula model names its inputs (``model.inputs``); a layer model reads ``data.X``.
    """
    names = getattr(model, "inputs", None)
    if isinstance(names, tuple | list) and all(isinstance(n, str) for n in names):
        missing = [n for n in names if n not in data.inputs]
        if missing:
            raise ChainruleError(
                f"the model reads {', '.join(map(repr, missing))}, which the data set "
                f"'{data.name}' does not have (it has {', '.join(data.input_names)})"
            )
        return np.column_stack([np.asarray(data.inputs[n], dtype=np.float64) for n in names])
    return np.asarray(data.X, dtype=np.float64)


def predict(model: Any, X: np.ndarray) -> np.ndarray:
    """The model's outputs for the rows of ``X``: shape (m,) or (m, k) for k > 1 outputs."""
    with no_grad():
        out = model(Tensor(np.asarray(X, dtype=np.float64)))
    data = np.asarray(out.data if isinstance(out, Tensor) else out, dtype=np.float64)
    if data.ndim == 2 and data.shape[1] == 1:
        data = data[:, 0]
    return data


def trained_names(history: Any) -> list[str]:
    """The scalars a history trained, in its order."""
    names = getattr(history, "trained", None)
    if names:
        return list(names)
    if getattr(history, "steps", None):
        return list(history.steps[0].values)
    return list(getattr(history, "final_values", {}) or {})


def check_parameter(model: Any, name: str) -> str:
    """``name`` as the model spells it (``model.scalar`` raises for an unknown name)."""
    return model.scalar(name).name


#: A run whose loss ends more than this many times above its start has diverged, whether
#: or not a stop rule caught it (a learning rate that is too large can make the loss grow
#: by a factor of two per step for a thousand steps without ever overflowing).
DIVERGED_GROWTH = 100.0
#: Of a diverged run, figures show the steps while the loss is within this factor of its
#: start: the first overshoots are the lesson, and they would vanish on an axis reaching
#: to 1e+300.
VIEW_GROWTH = 1e4
#: ... and at least this many steps, however fast the loss grows.
VIEW_MIN_STEPS = 3


def undone(history: Any) -> bool:
    """Whether training undid the last step of a diverged run: its final values are the
    ones before that step, and the loss after it is known only from the stop message."""
    steps = getattr(history, "steps", None)
    if getattr(history, "stop_reason", "") != "diverged" or not steps:
        return False
    final = getattr(history, "final_values", None) or {}
    after = steps[-1].new_values
    return any(n in final and not np.array_equal(final[n], after[n]) for n in after)


def all_losses(history: Any) -> np.ndarray:
    """The loss before each step, then the loss after the last one (when the history
    has it: not when training undid that step)."""
    losses = np.asarray(list(getattr(history, "losses", []) or []), dtype=np.float64)
    final = getattr(history, "final_loss", None)
    if final is not None and losses.size and not undone(history):
        losses = np.append(losses, float(final))
    return losses


def divergence(history: Any) -> str | None:
    """``'diverged: the loss grew to 3.7e+293'`` when the run blew up, else None.

    A run diverged when training said so, when a loss is not finite, or when the loss
    ended more than :data:`DIVERGED_GROWTH` times above where it started. When training
    stopped the run, its own sentence says why (it saw the loss that it then undid).

    >>> class Run:
    ...     losses, final_loss, stop_reason = [20.4, 40.0, 78.5], 3.7e293, "max_steps"
    >>> divergence(Run())
    'diverged: the loss grew to 3.7e+293'
    >>> Run.final_loss = 1.0
    >>> divergence(Run()) is None
    True
    >>> Run.stop_reason, Run.message = "diverged", "the loss grew from 20.4 to 4.1e+13"
    >>> divergence(Run())
    'diverged: the loss grew from 20.4 to 4.1e+13'
    """
    if history is None:
        return None
    losses = all_losses(history)
    if losses.size == 0:
        return None
    finite = losses[np.isfinite(losses)]
    said = getattr(history, "stop_reason", "") == "diverged"
    grew = bool(
        np.isfinite(losses[0])
        and not np.isnan(losses[-1])
        and losses[-1] > DIVERGED_GROWTH * max(abs(float(losses[0])), 1e-300)
    )
    if not (said or grew or finite.size < losses.size):
        return None
    message = getattr(history, "message", "")
    if said and isinstance(message, str) and message:
        return f"diverged: {message}"
    if finite.size == 0:
        return f"diverged: the loss was {losses[0]:g} from the start"
    text = f"diverged: the loss grew to {significant(finite.max(), 2)}"
    if finite.size < losses.size:
        text += f", then to {losses[~np.isfinite(losses)][0]:g}"
    return text


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


def steps_in_view(history: Any) -> int:
    """How many steps a figure of the descent shows: all of them, or for a diverged run
    those before the loss passes :data:`VIEW_GROWTH` times its start (at least
    :data:`VIEW_MIN_STEPS` finite ones). The end is in view only when all steps are.

    >>> class Run:
    ...     losses, final_loss, stop_reason = [1.0, 10.0, 1e3, 1e5, 1e7], 1e9, ""
    >>> steps_in_view(Run())
    3
    """
    losses = np.asarray(list(history.losses), dtype=np.float64)
    if divergence(history) is None:
        return int(losses.size)
    shown = 0
    limit = VIEW_GROWTH * max(abs(float(losses[0])), 1e-300) if losses.size else 0.0
    for i, value in enumerate(losses):
        if not np.isfinite(value) or (value > limit and i >= VIEW_MIN_STEPS):
            break
        shown = i + 1
    return shown
