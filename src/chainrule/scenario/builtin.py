"""The scenarios that ship with chainrule (``chainrule scenarios``), and the commented
template that ``chainrule new FILE`` writes.

>>> [info.name for info in builtin_scenarios()][:2]
['main-ideas', 'three-parameters']
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path


@dataclass(frozen=True)
class ScenarioInfo:
    """A built-in scenario: its name (for ``chainrule run NAME``), title and description."""

    name: str
    title: str
    description: str
    path: Path


def builtin_dir() -> Path:
    """The folder of the built-in scenario files."""
    return Path(str(resources.files("chainrule") / "scenarios"))


#: The built-in scenarios in teaching order (others follow by name).
_TEACHING_ORDER = ("main-ideas", "three-parameters", "all-parameters", "circles", "moons")


def _teaching_order(path: Path) -> tuple[int, str]:
    name = path.stem
    rank = _TEACHING_ORDER.index(name) if name in _TEACHING_ORDER else len(_TEACHING_ORDER)
    return rank, name


def builtin_scenarios() -> list[ScenarioInfo]:
    """The scenarios that ship with chainrule, in teaching order.

    >>> [info.name for info in builtin_scenarios()][:3]
    ['main-ideas', 'three-parameters', 'all-parameters']
    """
    infos = []
    for path in sorted(builtin_dir().glob("*.toml"), key=_teaching_order):
        text = path.read_text(encoding="utf-8")
        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError:  # pragma: no cover (the tests load every file)
            values = {}
        title = values.get("title", path.stem)
        description = values.get("description") or _leading_comment(text)
        infos.append(ScenarioInfo(path.stem, str(title), description, path))
    return infos


def _leading_comment(text: str) -> str:
    """The comment lines at the top of a file, without their ``#``: its description."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            break
        lines.append(stripped.lstrip("#").strip())
    return "\n".join(lines).strip()


#: The commented scenario that ``chainrule new FILE`` writes: the seed's example, with
#: every other choice shown in comments. It loads and runs as it is.
TEMPLATE = '''\
# A chainrule scenario: the data, the model and how to train it, in one file.
# Run it with:      chainrule run THIS_FILE
# Explain a slope:  chainrule explain THIS_FILE --param b3
# Lines starting with # are comments; the file format is TOML.
# Write what this example teaches here, for the next teacher who opens it.
title = "My scenario"

[data]
# Arrays written here: the names the formula uses are its inputs, the one remaining
# array is the target (or say it: target = "observed"). One value per data point.
dosage = [0.0, 0.5, 1.0]
observed = [0.0, 1.0, 0.0]
# Or a CSV file with a header row, relative to this file:
#   csv = "doses.csv"
#   inputs = ["dosage"]
#   target = "efficacy"
# Or a built-in data set (dosage, moons, circles, spirals, xor, digits) and its options:
#   dataset = "moons"
#   n = 200
#   noise = 0.1

[model]
# One assignment per line, the last is the output. Names the data provides are inputs,
# every other name that is used but never assigned is a parameter. Functions: softplus,
# relu, leaky_relu, sigmoid, tanh, exp, log, sqrt, abs, maximum, minimum.
formula = """
x1 = w1 * dosage + b1
y1 = softplus(x1)
x2 = w2 * dosage + b2
y2 = softplus(x2)
predicted = w3 * y1 + w4 * y2 + b3
"""
# Or layers (inputs, hidden..., outputs) instead of a formula:
#   layers = [2, 8, 8, 1]
#   activation = "tanh"      # relu, leaky_relu, tanh, sigmoid, softplus, identity
#   output = "identity"      # the output layer's activation

[parameters]
# Starting values: one for each parameter of the formula (one left out is an error, as
# a typo would be). Or write init = "random": those left out then start at 0 (names
# starting with b) or at a random number drawn with the seed below.
w1 = 3.34
b1 = -1.43
w2 = -3.53
b2 = 0.57
w3 = -1.22
w4 = -2.30
b3 = 0.0

[train]
loss = "ssr"                     # ssr, mse, mae, binary_cross_entropy(_with_logits), cross_entropy
optimize = ["b3"]                # the others stay frozen; leave out to train them all
optimizer = "gradient_descent"   # gradient_descent, sgd, momentum, adam, adamw
learning_rate = 0.1
stop = { step_size = 0.001, max_steps = 1000 }   # also: loss = 0.0001
seed = 0
# batch_size = 32                # leave out to use every data point in each step
# compile = true                 # trace one step and replay it: the same numbers, faster
'''
