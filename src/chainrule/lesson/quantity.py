"""Quantities: the numbers a lesson talks about, named in words and computed by the engine.

A checkpoint's answer and a ``{{ ... }}`` in a lesson's prose are never typed in: they
name a quantity, which the engine computes when the lesson is played. A quantity is a
kind followed by its words (rows, steps and classes count from 1)::

    node SCENARIO NAME at INPUT=VALUE [rounded D]   a formula line's value at one input
    slope SCENARIO PARAM [step K]                   the slope the run computed at step K
    step-size SCENARIO PARAM [step K]               the step the optimizer took
    new-value SCENARIO PARAM [step K]               the value after step K
    start SCENARIO PARAM                            the starting value
    final SCENARIO PARAM                            the value after training
    loss SCENARIO [step K | final]                  the loss before step K (or at the end)
    steps SCENARIO                                  how many steps the run took
    accuracy SCENARIO                               the share of rows classified right
    probability SCENARIO ROW CLASS                  the softmax of the model's outputs
    row-slope SCENARIO PARAM ROW                    the slope of one row's part of the loss
    softmax A B C ... pick I                        the softmax of raw outputs A, B, C ...
    softmax-slope A B C ... pick I by J             d softmax_I / d raw output J
    cross-entropy P                                 -ln P, for the observed class's P
    total-cross-entropy P1 P2 ... [rounded D]       the sum of -ln P (each rounded first)

``rounded D`` repeats the arithmetic as it is done by hand: every value rounded to ``D``
decimals before the next step uses it (a forward pass node by node, or a sum of terms).

>>> bench = Workbench()
>>> round(bench.value(parse_quantity("slope main-ideas b3 step 1")), 2)
-15.66
>>> [round(bench.value(parse_quantity(f"softmax 1.43 -0.40 0.23 pick {i}")), 2) for i in (1, 2, 3)]
[0.68, 0.11, 0.21]
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.errors import ChainruleError
from chainrule.explain.model_graph import loss_node, recording_twin
from chainrule.formula import Formula
from chainrule.losses import cross_entropy
from chainrule.run import Run
from chainrule.scenario import Scenario, load_scenario
from chainrule.tensor import no_grad, softmax, tensor
from chainrule.text import closest

__all__ = ["KINDS", "Quantity", "Workbench", "parse_quantity"]

#: Each kind of quantity and the words it takes (shown in an error message).
KINDS: dict[str, str] = {
    "node": "node SCENARIO NAME at INPUT=VALUE [rounded D]",
    "slope": "slope SCENARIO PARAM [step K]",
    "step-size": "step-size SCENARIO PARAM [step K]",
    "new-value": "new-value SCENARIO PARAM [step K]",
    "start": "start SCENARIO PARAM",
    "final": "final SCENARIO PARAM",
    "loss": "loss SCENARIO [step K | final]",
    "steps": "steps SCENARIO",
    "accuracy": "accuracy SCENARIO",
    "probability": "probability SCENARIO ROW CLASS",
    "row-slope": "row-slope SCENARIO PARAM ROW",
    "softmax": "softmax A B C ... pick I",
    "softmax-slope": "softmax-slope A B C ... pick I by J",
    "cross-entropy": "cross-entropy P",
    "total-cross-entropy": "total-cross-entropy P1 P2 ... [rounded D]",
}

_ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.+)$")


@dataclass(frozen=True)
class Quantity:
    """A parsed quantity: its ``kind``, the ``scenario`` it reads (if any) and its settings.

    ``name`` is a parameter or formula line, ``numbers`` the numbers written in it,
    ``step`` a step (0: the end of the run), ``row`` and ``pick``/``by`` 1-based positions,
    ``at`` an input's name and value, ``rounded`` the decimals of hand arithmetic.
    """

    kind: str
    text: str
    scenario: str = ""
    name: str = ""
    numbers: tuple[float, ...] = ()
    step: int = 1
    row: int = 0
    pick: int = 0
    by: int = 0
    at: tuple[str, float] | None = None
    rounded: int | None = None


def _usage(kind: str) -> str:
    return f"expected: {KINDS[kind]}"


def _number(word: str, kind: str) -> float:
    try:
        value = float(word.replace("\u2212", "-"))
    except ValueError:
        raise ChainruleError(f"{word!r} is not a number ({_usage(kind)})") from None
    if not math.isfinite(value):
        raise ChainruleError(f"{word!r} is not a finite number")
    return value


def _whole(word: str, what: str, kind: str) -> int:
    if not word.isdigit() or int(word) < 1:
        raise ChainruleError(f"{what} {word!r}: expected a whole number >= 1 ({_usage(kind)})")
    return int(word)


def _option(words: list[str], key: str, kind: str) -> str | None:
    """Remove ``key VALUE`` from ``words``; return VALUE (or None when absent)."""
    if key not in words:
        return None
    i = words.index(key)
    if i + 1 >= len(words):
        raise ChainruleError(f"{key!r} needs a value ({_usage(kind)})")
    value = words[i + 1]
    del words[i : i + 2]
    return value


def parse_quantity(text: str) -> Quantity:
    """A :class:`Quantity` from its words; a mistake says what the kind expects.

    >>> parse_quantity("slope main-ideas b3 step 2").step
    2
    >>> parse_quantity("slope main-ideas")
    Traceback (most recent call last):
    ...
    chainrule.errors.ChainruleError: 'slope' takes 2 words, got 1 (expected: slope SCENARIO ...
    """
    words = text.split()
    if not words:
        raise ChainruleError(f"no quantity given; the kinds are: {', '.join(KINDS)}")
    kind, words = words[0], words[1:]
    if kind not in KINDS:
        close = closest(kind, KINDS)
        hint = f"did you mean {close!r}? " if close else ""
        raise ChainruleError(f"unknown quantity {kind!r}; {hint}the kinds are: {', '.join(KINDS)}")
    text = " ".join([kind, *words])
    rounded_word = _option(words, "rounded", kind)
    rounded = None
    if rounded_word is not None:
        if kind not in ("node", "total-cross-entropy"):
            raise ChainruleError(f"'rounded' is for node and total-cross-entropy, not {kind}")
        if not rounded_word.isdigit() or int(rounded_word) > 9:
            raise ChainruleError(f"rounded {rounded_word!r}: expected decimals 0 to 9")
        rounded = int(rounded_word)

    def count(n: int) -> None:
        if len(words) != n:
            raise ChainruleError(f"{kind!r} takes {n} words, got {len(words)} ({_usage(kind)})")

    if kind == "node":
        at = _option(words, "at", kind)
        count(2)
        if at is None or _ASSIGN.match(at) is None:
            raise ChainruleError(
                f"'node' needs 'at INPUT=VALUE', e.g. at dosage=0 ({_usage(kind)})"
            )
        match = _ASSIGN.match(at)
        assert match is not None
        value = _number(match[2], kind)
        return Quantity(kind, text, words[0], words[1], at=(match[1], value), rounded=rounded)
    if kind in ("slope", "step-size", "new-value"):
        step = _option(words, "step", kind)
        count(2)
        return Quantity(kind, text, words[0], words[1], step=_whole(step or "1", "step", kind))
    if kind in ("start", "final"):
        count(2)
        return Quantity(kind, text, words[0], words[1])
    if kind == "loss":
        step = _option(words, "step", kind)
        final = "final" in words
        if final:
            words.remove("final")
        count(1)
        if final and step is not None:
            raise ChainruleError(f"'loss' takes 'step K' or 'final', not both ({_usage(kind)})")
        return Quantity(
            kind, text, words[0], step=0 if final else _whole(step or "1", "step", kind)
        )
    if kind in ("steps", "accuracy"):
        count(1)
        return Quantity(kind, text, words[0])
    if kind == "probability":
        count(3)
        return Quantity(
            kind,
            text,
            words[0],
            row=_whole(words[1], "row", kind),
            pick=_whole(words[2], "class", kind),
        )
    if kind == "row-slope":
        count(3)
        return Quantity(kind, text, words[0], words[1], row=_whole(words[2], "row", kind))
    if kind in ("softmax", "softmax-slope"):
        by = _option(words, "by", kind) if kind == "softmax-slope" else None
        pick = _option(words, "pick", kind)
        if pick is None or (kind == "softmax-slope" and by is None):
            raise ChainruleError(f"{_usage(kind)}")
        numbers = tuple(_number(w, kind) for w in words)
        if len(numbers) < 2:
            raise ChainruleError(f"softmax needs two raw outputs or more ({_usage(kind)})")
        quantity = Quantity(
            kind,
            text,
            numbers=numbers,
            pick=_whole(pick, "pick", kind),
            by=_whole(by or "1", "by", kind),
        )
        if max(quantity.pick, quantity.by) > len(numbers):
            raise ChainruleError(f"there are {len(numbers)} raw outputs; pick and by count from 1")
        return quantity
    numbers = tuple(_number(w, kind) for w in words)
    if kind == "cross-entropy" and len(numbers) != 1:
        raise ChainruleError(f"'cross-entropy' takes one probability ({_usage(kind)})")
    if not numbers or not all(0 < p <= 1 for p in numbers):
        raise ChainruleError(f"probabilities must be above 0 and at most 1 ({_usage(kind)})")
    return Quantity(kind, text, numbers=numbers, rounded=rounded)


# ---------------------------------------------------------------------------------------
# Computing
# ---------------------------------------------------------------------------------------


class Workbench:
    """Computes quantities; loads each scenario and trains it at most once.

    ``folder`` is where a lesson file is: a scenario named by a file is looked for there
    first (then as given, then among the built-in ones).
    """

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder
        self._scenarios: dict[str, Scenario] = {}
        self._runs: dict[str, Run] = {}

    def scenario_source(self, name: str) -> str:
        """Where the scenario ``name`` is read from: beside the lesson, or as given."""
        if self.folder is not None and name.endswith(".toml") and (self.folder / name).is_file():
            return str(self.folder / name)
        return name

    def scenario(self, name: str) -> Scenario:
        """The scenario ``name`` (a file beside the lesson, a path or a built-in name)."""
        if name not in self._scenarios:
            self._scenarios[name] = load_scenario(self.scenario_source(name))
        return self._scenarios[name]

    def run(self, name: str) -> Run:
        """The training run of the scenario ``name``."""
        if name not in self._runs:
            self._runs[name] = self.scenario(name).run()
        return self._runs[name]

    def value(self, q: Quantity) -> float:
        """The number ``q`` names, computed by the engine."""
        compute = getattr(self, "_" + q.kind.replace("-", "_"))
        return float(compute(q))

    # -- from a training run ------------------------------------------------------------

    def _record(self, q: Quantity) -> Any:
        scenario = self.scenario(q.scenario)
        history = self.run(q.scenario).history
        if not history.steps:
            raise ChainruleError(f"{scenario.label}: the run kept no per-step values")
        if q.step > len(history.steps):
            raise ChainruleError(
                f"{scenario.label}: the run took {len(history.steps)} steps, not {q.step}"
            )
        record = history.steps[q.step - 1]
        if q.name and q.name not in record.slopes:
            trained = ", ".join(record.slopes)
            raise ChainruleError(
                f"{scenario.label}: {q.name!r} is not trained (trained: {trained})"
            )
        return record

    def _slope(self, q: Quantity) -> float:
        return self._record(q).slopes[q.name]

    def _step_size(self, q: Quantity) -> float:
        return self._record(q).step_sizes[q.name]

    def _new_value(self, q: Quantity) -> float:
        return self._record(q).new_values[q.name]

    def _start(self, q: Quantity) -> float:
        return self.scenario(q.scenario).build_model().scalar(q.name).value

    def _final(self, q: Quantity) -> float:
        return self.run(q.scenario).model.scalar(q.name).value

    def _loss(self, q: Quantity) -> float:
        if q.step == 0:
            return self.run(q.scenario).history.final_loss
        return self._record(q).loss

    def _steps(self, q: Quantity) -> float:
        return self.run(q.scenario).history.num_steps

    def _accuracy(self, q: Quantity) -> float:
        accuracy = self.run(q.scenario).history.final_accuracy
        if accuracy is None:
            raise ChainruleError(f"{q.scenario}: accuracy is for classification scenarios")
        return accuracy

    # -- from the model at its starting values -------------------------------------------

    def _node(self, q: Quantity) -> float:
        model = self.scenario(q.scenario).build_model()
        if not model.formula_lines:
            raise ChainruleError(f"{q.scenario}: 'node' reads the lines of a formula model")
        assert q.at is not None
        given, value = q.at
        inputs = model.input_names or ()
        if given not in inputs:
            raise ChainruleError(
                f"{q.scenario}: the model's inputs are {', '.join(inputs)}, not {given!r}"
            )
        lines = [a.name for a in model.formula_lines]
        if q.name not in lines:
            raise ChainruleError(
                f"{q.scenario}: the formula has no line {q.name!r} (its lines: {', '.join(lines)})"
            )
        if q.rounded is None:
            return model.trace({given: [value]})[q.name].data[0]
        return _by_hand(model, given, value, q.name, q.rounded)

    def _row(self, q: Quantity) -> Any:
        data = self.scenario(q.scenario).data
        if q.row > data.n:
            raise ChainruleError(f"{q.scenario}: the data has {data.n} rows, not {q.row}")
        return data.subset([q.row - 1])

    def _probability(self, q: Quantity) -> float:
        model = self.scenario(q.scenario).build_model()
        with no_grad():
            raw = model.output_graph(self._row(q))
        if raw.ndim != 2 or q.pick > raw.shape[1]:
            raise ChainruleError(
                f"{q.scenario}: the model has {raw.shape[-1] if raw.ndim == 2 else 1} "
                f"output(s), not {q.pick}"
            )
        return softmax(raw, axis=-1).data[0, q.pick - 1]

    def _row_slope(self, q: Quantity) -> float:
        scenario = self.scenario(q.scenario)
        model = recording_twin(scenario.build_model())
        ref = model.scalar(q.name)
        loss_node(model, self._row(q), scenario.loss).backward()
        return ref.grad() or 0.0

    # -- from numbers written in the lesson ----------------------------------------------

    def _softmax(self, q: Quantity) -> float:
        return softmax(tensor(q.numbers), axis=-1).data[q.pick - 1]

    def _softmax_slope(self, q: Quantity) -> float:
        raw = tensor(q.numbers, requires_grad=True)
        softmax(raw, axis=-1)[q.pick - 1].backward()
        assert raw.grad is not None
        return raw.grad[q.by - 1]

    def _cross_entropy(self, q: Quantity) -> float:
        return _cross_entropies(q.numbers)[0]

    def _total_cross_entropy(self, q: Quantity) -> float:
        terms = _cross_entropies(q.numbers)
        if q.rounded is not None:
            terms = np.round(terms, q.rounded)
        return float(np.sum(terms))


def _cross_entropies(probabilities: tuple[float, ...]) -> np.ndarray:
    """Each observation's cross entropy, by the engine's ``cross_entropy`` loss: each row's
    probability ``p`` of the observed class (and the rest spread on a second class) as
    log-probabilities, so that the loss of that row is ``-ln p``."""

    p = np.asarray(probabilities, dtype=np.float64)
    rest = np.clip(1.0 - p, 1e-300, None)
    logits = tensor(np.log(np.column_stack([p, rest])))  # (n, 2): softmax gives back p
    return np.array([cross_entropy(logits[i : i + 1], [0]).item() for i in range(len(p))])


def _by_hand(model: Any, given: str, value: float, wanted: str, decimals: int) -> float:
    """A formula's line ``wanted`` worked out line by line, each value rounded to
    ``decimals`` before the next line uses it, as a pass done by hand is."""

    parameters = {name: p.value for name, p in ((r.name, r) for r in model.scalars())}
    known: dict[str, float] = {given: value}
    for assignment in model.assignments:
        inputs = [n for n in assignment.uses if n in known]
        line = Formula(
            f"{assignment.name} = {assignment.expression}",
            inputs=inputs,
            values={n: parameters[n] for n in assignment.uses if n in parameters},
        )
        computed = line({n: [known[n]] for n in inputs} if inputs else {}).data
        known[assignment.name] = round(float(np.ravel(computed)[0]), decimals)
        if assignment.name == wanted:
            return known[wanted]
    raise AssertionError(f"no line {wanted}")  # pragma: no cover (checked by the caller)
