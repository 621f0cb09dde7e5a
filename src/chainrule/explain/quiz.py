"""Quiz support: ask the learner for a step's slope, step size or new value, or for a node
of the forward pass, and check the answer against the engine's numbers.

The questions and answers come from a training history: the slope is the one the engine
computed, the step size and the new value the ones the optimizer took; a forward-pass
question's answer is the model's own forward pass (:meth:`~chainrule.nn.Module.named_nodes`).
An answer is right when it matches to the precision the learner typed: ``-15.66`` is right
for a slope of -15.6551 (it is within half a unit of its last digit, 0.005), ``-15.7`` too,
``-15.6`` is not. At least two significant digits are needed, so ``0`` is not an answer to
0.3. A wrong answer that matches a known mistake (the wrong sign, the step size for the
slope, a missing factor 2, one data point's term alone, ``+`` for ``-``) is named in one
sentence with the right value.

>>> from chainrule.datasets import dosage
>>> from chainrule.formula import Formula
>>> from chainrule.training import train
>>> model = Formula("predicted = 0 * dosage + b", inputs=["dosage"])
>>> history = train(model, dosage(), learning_rate=0.1, stop={"max_steps": 2})
>>> [q.kind for q in quiz_questions(history, 1)]
['slope', 'step size', 'new value']
>>> question = quiz_questions(history, 1)[0]
>>> question.prompt
'What is the slope dSSR/db at b = 0.0000?'
>>> check_answer(question, "-2")
Check(correct=True, message='Right: dSSR/db is -2.0000.')
>>> check_answer(question, "2").message
'Right size, wrong sign: dSSR/db is -2.0000.'
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from chainrule.datasets import Dataset
from chainrule.errors import ChainruleError
from chainrule.explain.chain import chain_rule
from chainrule.explain.document import Document, Explanation, plain
from chainrule.explain.forward import MAX_POINTS, points_table
from chainrule.explain.notation import loss_display_name
from chainrule.losses import LOSSES
from chainrule.nn.module import Module
from chainrule.ops import OPS
from chainrule.run import Run
from chainrule.text import DIGITS, constant, decimals, significant
from chainrule.training import History

#: The kinds of question: a step's, in the order a step computes them, then a node of the
#: forward pass.
KINDS = ("slope", "step size", "new value", "forward")

#: How the feedback on a wrong answer that no known slip explains begins.
NOT_QUITE = "Not quite"

#: The example of a number shown when an answer is not one: the same for every question.
NUMBER_EXAMPLE = "1.5"

#: A formula with more lines than this is asked about its output only.
MAX_FORWARD_LINES = 8

_NUMBER = re.compile(
    r"^[+-]?(?:(?P<whole>\d+)(?:\.(?P<frac>\d*))?|\.(?P<frac2>\d+))(?:[eE](?P<exp>[+-]?\d+))?$"
)
_CALL = re.compile(r"([A-Za-z_]\w*)\s*\(")


class Check(NamedTuple):
    """The verdict on an answer: ``ok, feedback = check_answer(...)`` unpacks it."""

    correct: bool
    message: str


class Mistake(NamedTuple):
    """A known wrong answer: the number it gives and the sentence that names it (with the
    right value)."""

    value: float
    message: str


@dataclass(frozen=True)
class Question:
    """One question: ``kind`` is ``"slope"``, ``"step size"``, ``"new value"`` (about one
    step of training) or ``"forward"`` (a node of the forward pass).

    ``answer`` is the engine's number; ``tolerance`` is the slack granted on top of the
    precision of the learner's answer (the rounding of the numbers the prompt shows).
    ``subject`` names what is asked for (``dSSR/db3``, ``the new b3``) and ``explanation``
    says how the answer is computed, shown after a wrong answer. ``mistakes`` are the
    wrong answers that a known slip gives, each named in its own sentence.
    """

    kind: str
    parameter: str
    prompt: str
    answer: float
    tolerance: float
    step: int = 0
    subject: str = ""
    explanation: str = ""
    mistakes: tuple[Mistake, ...] = ()


def quiz_questions(source: History | Run, step: int) -> list[Question]:
    """The questions about ``step`` (1-based): per trained scalar its slope, its step size
    (only for plain gradient descent, where step size = slope x learning rate) and its new
    value. Given a :class:`~chainrule.run.Run` rather than its History, a slope answered
    with one data point's term alone is recognised too (the terms are the chain rule's).

    >>> from chainrule.datasets import dosage
    >>> from chainrule.formula import Formula
    >>> from chainrule.training import train
    >>> history = train(Formula("p = 0 * dosage + b", inputs=["dosage"]), dosage(),
    ...                 stop={"max_steps": 3})
    >>> quiz_questions(history, 2)[2].prompt
    'b = 0.2000 and the step size is -0.0800: what is the new b?'
    """
    history = source.history if isinstance(source, Run) else source
    record = _record(history, step)
    loss = loss_display_name(history.loss_name)
    spec = LOSSES.get(history.loss_name)
    factor = None if spec is None else spec.curvature  # 2 for a squared residual
    lr = float(history.learning_rate)
    printed = 0.5 * 10.0**-DIGITS  # how far a number the prompt shows may be from the truth
    small = 1e-9
    model = source.model_at_step(step - 1) if isinstance(source, Run) else None
    questions = []
    for p in history.trained:
        value, slope = record.values[p], record.slopes[p]
        step_size, new = record.step_sizes[p], record.new_values[p]
        label = f"d{loss}/d{p}"
        is_slope = f"{label} is {decimals(slope)}"
        plain_step = math.isclose(step_size, lr * slope, rel_tol=1e-9, abs_tol=1e-300)
        mistakes = []
        if plain_step and lr != 1:
            mistakes.append(
                Mistake(
                    step_size,
                    f"That is the step size (slope x learning rate {lr:g}); the slope {is_slope}.",
                )
            )
        if factor is not None and factor not in (0, 1):
            mistakes.append(
                Mistake(
                    slope / factor,
                    f"You left out the factor {constant(factor)} of the squared residual's "
                    f"slope: {is_slope}.",
                )
            )
        if isinstance(source, Run) and model is not None:
            mistakes += _one_point_mistakes(source, model, p, label, slope)
        questions.append(
            Question(
                "slope",
                p,
                f"What is the slope {label} at {p} = {decimals(value)}?",
                slope,
                1e-6 * max(1.0, abs(slope)),
                step,
                label,
                f"{label} at {p} = {decimals(value)} is {decimals(slope)}: the chain rule shows "
                "where it comes from.",
                tuple(mistakes),
            )
        )
        how = f"{decimals(slope)} x {lr:g} = {decimals(step_size)}"
        if plain_step:
            questions.append(
                Question(
                    "step size",
                    p,
                    f"The slope {label} is {decimals(slope)} and the learning rate is {lr:g}: "
                    f"what is the step size of {p}?",
                    step_size,
                    printed * lr + small,
                    step,
                    f"the step size of {p}",
                    f"step size = slope x learning rate = {how}",
                    (
                        Mistake(
                            slope,
                            f"That is the slope; the step size is slope x learning rate = {how}.",
                        ),
                    )
                    if lr != 1
                    else (),
                )
            )
        worked = f"{decimals(value)} - ({decimals(step_size)}) = {decimals(new)}"
        questions.append(
            Question(
                "new value",
                p,
                f"{p} = {decimals(value)} and the step size is {decimals(step_size)}: "
                f"what is the new {p}?",
                new,
                2 * printed + small,
                step,
                f"the new {p}",
                f"new {p} = old {p} - step size = {worked}",
                (
                    Mistake(
                        value + step_size,
                        f"That adds the step size; the new {p} = old {p} - step size = {worked}.",
                    ),
                    Mistake(
                        value - slope,
                        f"That subtracts the slope; the new {p} = old {p} - step size = {worked}.",
                    ),
                ),
            )
        )
    return questions


def _record(history: History, step: int) -> Any:
    if not history.steps:
        raise ChainruleError("quiz: this history kept no per-step detail (train with detail=True)")
    if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= len(history.steps):
        raise ChainruleError(f"quiz: step must be between 1 and {len(history.steps)}, got {step!r}")
    return history.steps[step - 1]


def _one_point_mistakes(
    run: Run, model: Module, parameter: str, label: str, slope: float
) -> list[Mistake]:
    """One data point's term of the slope, for each point (the chain rule's per-point sums),
    when the slope adds up more than one point and the table shows them all (nobody adds
    up more by hand)."""
    if not 2 <= run.data.n <= MAX_POINTS:
        return []
    try:
        terms = chain_rule(model, run.data, run.loss, parameter).point_terms
    except ChainruleError:  # too many paths to explain: no per-point terms
        return []
    if terms is None:
        return []
    names = list(run.data.inputs)[:1]
    out = []
    for i, term in enumerate(terms):
        where = ", ".join(f"{n} = {significant(run.data.inputs[n][i], 4)}" for n in names)
        out.append(
            Mistake(
                float(term),
                f"That is data point {i + 1}'s term alone ({where}); the slope adds the terms "
                f"of all {run.data.n} points: {label} is {decimals(slope)}.",
            )
        )
    return out


@dataclass(frozen=True)
class QuizPoints(Explanation):
    """The data points as a quiz shows them before ``step`` (0: at the starting values):
    each point's inputs, ``observed`` value, ``predicted`` value (one column per output of
    a model with several) and, for a loss of residuals, the ``residual`` (observed -
    predicted). ``shown`` points are listed."""

    step: int
    inputs: dict[str, np.ndarray]
    target_name: str
    observed: np.ndarray
    output_name: str
    predicted: np.ndarray
    residual: np.ndarray | None

    @property
    def shown(self) -> int:
        """How many points the table lists (at most :data:`MAX_POINTS`)."""
        return min(len(self.observed), MAX_POINTS)

    def to_dict(self) -> dict[str, Any]:
        """``{"step", "points": [{"inputs", "observed", "predicted", "residual"?}]}``."""
        points = []
        for i in range(len(self.observed)):
            point: dict[str, Any] = {
                "inputs": {name: column[i] for name, column in self.inputs.items()},
                "observed": self.observed[i],
                "predicted": self.predicted[i],  # a list for a model of several outputs
            }
            if self.residual is not None:
                point["residual"] = self.residual[i]
            points.append(point)
        return plain({"step": self.step, "points": points})

    def document(self) -> Document:
        return points_table(
            self.inputs,
            self.target_name,
            self.observed,
            self.output_name,
            self.predicted,
            self.residual,
        )


def quiz_points(run: Run, step: int) -> QuizPoints:
    """The data points before ``step`` (1-based; 0 for the starting values): inputs,
    observed, predicted (the model's forward pass at that step's values) and residual, so
    that the first slope can be worked out from them (dSSR/db3 = sum of -2 x residual).

    >>> from chainrule.scenario import load_scenario
    >>> points = quiz_points(load_scenario("main-ideas").run(), 1)
    >>> points.residual.round(4).tolist()
    [2.6037, 2.609, 2.6149]
    """
    history = run.history
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= history.num_steps:
        raise ChainruleError(f"quiz: step must be between 0 and {history.num_steps}, got {step!r}")
    model = run.model_at_step(max(step - 1, 0))
    data = run.data
    predicted = np.asarray(model.predict(model.feed(data)), dtype=np.float64)
    observed = np.asarray(data.target, dtype=np.float64)
    spec = LOSSES.get(run.loss) if isinstance(run.loss, str) else None
    residual = None
    if spec is not None and spec.takes == "values" and predicted.shape == observed.shape:
        residual = observed - predicted
    return QuizPoints(
        step,
        {name: np.asarray(column) for name, column in data.inputs.items()},
        data.target_name,
        observed,
        model.output_name or "predicted",
        predicted,
        residual,
    )


def forward_questions(model: Module, data: Dataset, point: int | None = None) -> list[Question]:
    """Questions that walk the forward pass for data point ``point`` (1 to n; by default
    the middle one): each line of a formula model in order (its output only when it has more than
    :data:`MAX_FORWARD_LINES` lines), each output of any other model. The answers are the
    model's own forward pass.

    >>> from chainrule.scenario import load_scenario
    >>> s = load_scenario("main-ideas")
    >>> questions = forward_questions(s.build_model(), s.data)
    >>> questions[0].prompt
    'At dosage = 0.5, with w1 = 3.34 and b1 = -1.43: x1 = w1 * dosage + b1. What is x1?'
    >>> questions[-1].subject, round(questions[-1].answer, 4)
    ('predicted at dosage = 0.5', -1.609)
    """
    n = data.n
    number = n // 2 + 1 if point is None else point
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= n:
        raise ChainruleError(f"quiz: the data point must be between 1 and {n}, got {point!r}")
    i = number - 1
    X = model.feed(data)
    at = ", ".join(f"{name} = {significant(column[i], 6)}" for name, column in data.inputs.items())
    lines = model.formula_lines
    if not lines:
        out = np.asarray(model.predict(X[i : i + 1]), dtype=np.float64).reshape(-1)
        if out.size == 1:
            prompt = f"At {at}, what does the model predict?"
            return [_forward_question("predicted", prompt, float(out[0]), at)]
        return [
            _forward_question(
                f"output {j + 1}",
                f"At {at}, what is the model's output {j + 1} of {out.size}?",
                float(v),
                at,
            )
            for j, v in enumerate(out)
        ]
    nodes = model.named_nodes(data)
    assigned = {line.name for line in lines}
    shown = lines if len(lines) <= MAX_FORWARD_LINES else lines[-1:]
    questions = []
    for k, line in enumerate(shown):
        params = [u for u in line.uses if u not in assigned and u not in data.inputs]
        given = _listed([f"{u} = {significant(model.scalar(u).value, 6)}" for u in params])
        if k == 0:
            head = f"At {at}, with {given}: " if given else f"At {at}: "
        else:
            head = f"With {given}: " if given else ""
        functions = [
            _FUNCTIONS[f].doc.split(";")[0]
            for f in dict.fromkeys(_CALL.findall(line.expression))
            if f in _FUNCTIONS and _FUNCTIONS[f].doc.startswith(f"{f}(")
        ]
        where = f" ({'; '.join(functions)})" if functions else ""
        prompt = f"{head}{line.name} = {line.expression}{where}. What is {line.name}?"
        value = np.broadcast_to(np.asarray(nodes[line.name].data, dtype=np.float64), (n,))
        questions.append(_forward_question(line.name, prompt, float(value[i]), at))
    return questions


#: The op table's entries by the name a formula calls them (their doc says what they do).
_FUNCTIONS = {name: op for op in OPS.values() for name in op.formula_names}


def _listed(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return (
        items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}" if items else ""
    )


def _forward_question(name: str, prompt: str, answer: float, at: str) -> Question:
    subject = f"{name} at {at}"
    # the learner carries the earlier lines' values as shown (4 decimals) into later ones
    tolerance = 5e-4 * max(1.0, abs(answer))
    return Question(
        "forward",
        name,
        prompt,
        answer,
        tolerance,
        0,
        subject,
        f"the model's forward pass gives {name} = {decimals(answer)} at {at}",
    )


def check_answer(question: Question, text: str) -> Check:
    """Whether ``text`` answers ``question``, and a sentence of feedback, as a :class:`Check`.

    The answer may be off by half a unit of its last typed digit (``-15.66``: 0.005) but
    never by more than half a unit of the answer's second significant digit (so ``0`` does
    not answer 0.3), plus the question's tolerance. A wrong answer that matches one of the
    question's :class:`Mistake` values, or the answer with the wrong sign, is named.

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
    if _matches(given, places, answer, question.tolerance):
        return Check(True, f"Right: {what} is {decimals(answer)}.")
    for mistake in question.mistakes:
        if not _matches(mistake.value, DIGITS + 2, answer, question.tolerance) and _matches(
            given, places, mistake.value, question.tolerance
        ):
            return Check(False, mistake.message)
    if answer != 0 and _matches(given, places, -answer, question.tolerance):
        return Check(False, f"Right size, wrong sign: {what} is {decimals(answer)}.")
    feedback = f"{NOT_QUITE}: {what} is {decimals(answer)}, not {text.strip()}."
    if 0.5 * 10.0**-places > _allowed(answer, places):
        feedback += " (Give at least two significant digits.)"
    if question.explanation:
        feedback += f" {question.explanation}"
    return Check(False, feedback)


def _allowed(target: float, places: int) -> float:
    """How far an answer typed to ``places`` decimals may be from ``target``: half a unit of
    its last digit, but never more than half a unit of the target's second significant
    digit."""
    typed = 0.5 * 10.0**-places
    if target != 0 and math.isfinite(target):
        return min(typed, 0.5 * 10.0 ** (math.floor(math.log10(abs(target))) - 1))
    return typed


def _matches(given: float, places: int, target: float, tolerance: float) -> bool:
    return abs(given - target) <= _allowed(target, places) + tolerance


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
