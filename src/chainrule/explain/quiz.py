"""Quiz support: ask the learner for a step's slope, step size or new value, and check it.

The questions and answers come from a training history: the slope is the one the engine
computed, the step size and the new value the ones the optimizer took. An answer is right
when it matches to the precision the learner typed: ``-15.66`` is right for a slope of
-15.6551 (it is within half a unit of its last digit, 0.005), ``-15.7`` too, ``-15.6`` is
not. At least two significant digits are needed, so ``0`` is not an answer to 0.3.

>>> from chainrule.datasets import dosage
>>> from chainrule.formula import Formula
>>> from chainrule.training import train
>>> model = Formula("predicted = 0 * dosage + b", inputs=["dosage"])
>>> history = train(model, dosage(), learning_rate=0.1, stop={"max_steps": 2})
>>> [q.kind for q in quiz_questions(history, 1)]
['slope', 'step size', 'new value']
>>> question = quiz_questions(history, 1)[0]
>>> question.prompt
'Step 1: b = 0.0000. What is the slope dSSR/db?'
>>> ok, feedback = check_answer(question, "-2")
>>> ok, feedback
(True, 'Right: dSSR/db is -2.0000.')
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import NamedTuple

from chainrule.errors import ChainruleError
from chainrule.explain.notation import loss_display_name
from chainrule.text import DIGITS, decimals
from chainrule.training import History

#: The kinds of question, in the order a step computes them.
KINDS = ("slope", "step size", "new value")

#: The example of a number shown when an answer is not one: the same for every question.
NUMBER_EXAMPLE = "1.5"

_NUMBER = re.compile(
    r"^[+-]?(?:(?P<whole>\d+)(?:\.(?P<frac>\d*))?|\.(?P<frac2>\d+))(?:[eE](?P<exp>[+-]?\d+))?$"
)


class Check(NamedTuple):
    """The verdict on an answer: ``ok, feedback = check_answer(...)`` unpacks it."""

    correct: bool
    message: str


@dataclass(frozen=True)
class Question:
    """One question about one step: ``kind`` is ``"slope"``, ``"step size"`` or
    ``"new value"``.

    ``answer`` is the history's number; ``tolerance`` is the slack granted on top of the
    precision of the learner's answer (the rounding of the numbers the prompt shows).
    ``subject`` names what is asked for (``dSSR/db3``, ``the new b3``) and ``explanation``
    says how the answer is computed, shown after a wrong answer.
    """

    kind: str
    parameter: str
    prompt: str
    answer: float
    tolerance: float
    step: int = 0
    subject: str = ""
    explanation: str = ""


def quiz_questions(history: History, step: int) -> list[Question]:
    """The questions about ``step`` (1-based): per trained scalar its slope, its step size
    (only for plain gradient descent, where step size = slope x learning rate) and its new
    value.

    >>> from chainrule.datasets import dosage
    >>> from chainrule.formula import Formula
    >>> from chainrule.training import train
    >>> history = train(Formula("p = 0 * dosage + b", inputs=["dosage"]), dosage(),
    ...                 stop={"max_steps": 3})
    >>> quiz_questions(history, 2)[2].prompt
    'Step 2: b = 0.2000 and the step size is -0.0800. What is the new b?'
    """
    if not history.steps:
        raise ChainruleError("quiz: this history kept no per-step detail (train with detail=True)")
    if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= len(history.steps):
        raise ChainruleError(f"quiz: step must be between 1 and {len(history.steps)}, got {step!r}")
    record = history.steps[step - 1]
    loss = loss_display_name(history.loss_name)
    lr = float(history.learning_rate)
    printed = 0.5 * 10.0**-DIGITS  # how far a number the prompt shows may be from the truth
    small = 1e-9
    questions = []
    for p in history.trained:
        value, slope = record.values[p], record.slopes[p]
        step_size, new = record.step_sizes[p], record.new_values[p]
        label = f"d{loss}/d{p}"
        questions.append(
            Question(
                "slope",
                p,
                f"Step {step}: {p} = {decimals(value)}. What is the slope {label}?",
                slope,
                1e-6 * max(1.0, abs(slope)),
                step,
                label,
                f"{label} at {p} = {decimals(value)} is {decimals(slope)}: the chain rule shows "
                "where it comes from.",
            )
        )
        if math.isclose(step_size, lr * slope, rel_tol=1e-9, abs_tol=1e-300):
            questions.append(
                Question(
                    "step size",
                    p,
                    f"Step {step}: the slope {label} is {decimals(slope)} and the learning rate "
                    f"is {lr:g}. What is the step size?",
                    step_size,
                    printed * lr + small,
                    step,
                    f"the step size of {p}",
                    f"step size = slope x learning rate = {decimals(slope)} x {lr:g} = "
                    f"{decimals(step_size)}",
                )
            )
        questions.append(
            Question(
                "new value",
                p,
                f"Step {step}: {p} = {decimals(value)} and the step size is {decimals(step_size)}. "
                f"What is the new {p}?",
                new,
                2 * printed + small,
                step,
                f"the new {p}",
                f"new {p} = old {p} - step size = {decimals(value)} - ({decimals(step_size)}) = "
                f"{decimals(new)}",
            )
        )
    return questions


def check_answer(question: Question, text: str) -> Check:
    """Whether ``text`` answers ``question``, and a sentence of feedback, as a :class:`Check`.

    The answer may be off by half a unit of its last typed digit (``-15.66``: 0.005) but
    never by more than half a unit of the answer's second significant digit (so ``0`` does
    not answer 0.3), plus the question's tolerance.

    >>> q = Question("slope", "b3", "...", -15.6551083806, 1e-9, subject="dSSR/db3")
    >>> check_answer(q, "-15.66")[0], check_answer(q, "-15.6")[0], check_answer(q, "-16")[0]
    (True, False, True)
    >>> check_answer(q, "a lot")
    Check(correct=False, message='Please type a number, e.g. 1.5.')
    """
    what = question.subject or f"the {question.kind} of {question.parameter}"
    answer = question.answer
    parsed = _parse(text)
    if parsed is None:  # a fixed example: one made from the answer would give it away
        return Check(False, f"Please type a number, e.g. {NUMBER_EXAMPLE}.")
    given, places = parsed
    typed = 0.5 * 10.0**-places
    allowed = typed
    if answer != 0 and math.isfinite(answer):
        allowed = min(typed, 0.5 * 10.0 ** (math.floor(math.log10(abs(answer))) - 1))
    if abs(given - answer) <= allowed + question.tolerance:
        return Check(True, f"Right: {what} is {decimals(answer)}.")
    feedback = f"Not quite: {what} is {decimals(answer)}, not {text.strip()}."
    if typed > allowed:
        feedback += " (Give at least two significant digits.)"
    if question.explanation:
        feedback += f" {question.explanation}"
    return Check(False, feedback)


def _parse(text: str) -> tuple[float, int] | None:
    """``text`` as (value, number of decimals it was typed to), or None if not a number.

    ``1.50`` has 2 decimals, ``16`` none, ``1.5e-3`` four; a unicode minus and a decimal
    comma are accepted.
    """
    cleaned = text.strip().replace("\u2212", "-").replace(" ", "")
    if "," in cleaned and "." not in cleaned and cleaned.count(",") == 1:
        cleaned = cleaned.replace(",", ".")
    match = _NUMBER.match(cleaned)
    if match is None:
        return None
    fraction = match["frac"] or match["frac2"] or ""
    exponent = int(match["exp"] or 0)
    value = float(cleaned)
    if not math.isfinite(value):
        return None
    return value, len(fraction) - exponent
