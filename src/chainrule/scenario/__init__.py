"""Scenario files: a teaching example written once, in TOML, and run anywhere.

A scenario says which data, which model and which training settings an example uses.
The command line (``chainrule run main-ideas``), the Python API
(:func:`load_scenario`) and the web page all read the same file, so the numbers a class
sees are the same everywhere. The format (see ``docs/scenarios.md``)::

    title = "Backpropagation main ideas: estimate b3"

    [data]
    dosage = [0.0, 0.5, 1.0]       # inputs by name ...
    observed = [0.0, 1.0, 0.0]     # ... and the one remaining array is the target

    [model]
    formula = '''
    x1 = w1 * dosage + b1
    ...
    predicted = w3 * y1 + w4 * y2 + b3
    '''

    [parameters]                   # starting values
    b3 = 0.0

    [train]
    loss = "ssr"
    optimize = ["b3"]              # the others stay frozen
    learning_rate = 0.1
    stop = { step_size = 0.001, max_steps = 1000 }

Every mistake in a file (an unknown key, a wrong type, a parameter the model does not
have, a bad formula line or CSV cell) raises one :class:`~chainrule.errors.ChainruleError`
that names the file, the line and the key, and says what was expected.

>>> scenario = load_scenario("main-ideas")
>>> scenario.optimize, scenario.learning_rate
(['b3'], 0.1)
>>> run = scenario.run()
>>> round(run.model.scalar("b3").value, 2), run.history.stop_reason
(2.61, 'step_size')
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from chainrule.errors import ChainruleError
from chainrule.scenario.builtin import TEMPLATE, ScenarioInfo, builtin_dir, builtin_scenarios
from chainrule.scenario.files import FileAccess
from chainrule.scenario.keys import (
    CSV_KEYS,
    DEFAULT_LEARNING_RATE,
    DEFAULT_OPTIMIZER,
    DEFAULT_STOP,
    MAX_DATA_POINTS,
    MAX_PARAMETERS,
    MAX_STEPS,
    MODEL_KEYS,
    STOP_KEYS,
    TOP_KEYS,
    TRAIN_KEYS,
)
from chainrule.scenario.overrides import apply_overrides, parse_set
from chainrule.scenario.reader import Reader
from chainrule.scenario.record import Scenario
from chainrule.scenario.source import Source
from chainrule.text import did_you_mean

__all__ = [
    "CSV_KEYS",
    "DEFAULT_LEARNING_RATE",
    "DEFAULT_OPTIMIZER",
    "DEFAULT_STOP",
    "FileAccess",
    "MAX_DATA_POINTS",
    "MAX_PARAMETERS",
    "MAX_STEPS",
    "MODEL_KEYS",
    "STOP_KEYS",
    "TEMPLATE",
    "TOP_KEYS",
    "TRAIN_KEYS",
    "Scenario",
    "ScenarioInfo",
    "builtin_scenarios",
    "apply_overrides",
    "load_scenario",
    "parse_scenario",
    "parse_set",
]


def _resolve(source: str | os.PathLike[str]) -> Path:
    """The file for ``source``: a path to a TOML file, or the name of a built-in scenario."""
    path = Path(source)
    if path.is_file():
        return path
    if path.is_dir():
        raise ChainruleError(f"{path}: is a directory, not a scenario file")
    names = [info.name for info in builtin_scenarios()]
    text = os.fspath(source)
    if text in names:
        return builtin_dir() / f"{text}.toml"
    if path.suffix or os.sep in text or "/" in text:
        raise ChainruleError(f"{text}: no such file")
    raise ChainruleError(
        f"{text!r} is neither a file nor a built-in scenario{did_you_mean(text, names)} "
        f"(built-in: {', '.join(names)})"
    )


def load_scenario(
    source: str | os.PathLike[str],
    data_dirs: Iterable[str | os.PathLike[str]] = (),
    files: FileAccess | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Scenario:
    """Read a scenario from a TOML file, or a built-in one by name (``chainrule scenarios``).

    The file may read data files in its own folder or below, and in ``data_dirs``
    (``--data-dir``); ``files`` replaces that rule (:class:`FileAccess`).

    >>> scenario = load_scenario("main-ideas")
    >>> scenario.title
    'Backpropagation main ideas: estimate b3'
    >>> scenario.data.input_names, scenario.data.target_name
    (('dosage',), 'observed')
    """
    path = _resolve(source)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ChainruleError(f"{path}: is not UTF-8 text") from None
    except OSError as exc:
        raise ChainruleError(f"{path}: cannot read the file ({exc.strerror})") from None
    builtin = path.parent == builtin_dir()
    if files is None:
        files = FileAccess.beside(path, data_dirs)
    label = path.name if builtin else os.fspath(path)
    return parse_scenario(text, path=path, label=label, files=files, overrides=overrides)


def parse_scenario(
    text: str,
    path: str | os.PathLike[str] | None = None,
    label: str = "",
    files: FileAccess | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Scenario:
    """A scenario from the text of a TOML file (e.g. typed into the web page).

    ``path`` is where the file is (CSV files are found relative to it; without it,
    relative to the working directory); ``label`` names the file in error messages.
    ``files`` says which files it may read: by default those in the folder of ``path``
    (or the working folder) and below; a server passes ``FileAccess.nothing()``.
    ``overrides`` sets keys as if the file said so, ``{"train.learning_rate": 0.3}``
    (see :mod:`chainrule.scenario.overrides`), with the same checks; an error about one
    names the override.

    >>> scenario = parse_scenario('''
    ... [data]
    ... x = [0.0, 1.0, 2.0]
    ... y = [1.0, 3.0, 5.0]
    ... [model]
    ... formula = "y_hat = w * x + b"
    ... [parameters]
    ... w = 2.0
    ... b = 1.0
    ... ''')
    >>> scenario.parameter_names, scenario.loss
    (['w', 'b'], 'ssr')
    >>> parse_scenario('[data]\\nx = [1.0]\\n[model]\\nformula = "p = w * x"')
    Traceback (most recent call last):
    ...
    chainrule.errors.ChainruleError: <scenario>:1: [data]: no array for the target: ...
    """
    path = Path(path) if path is not None else None
    label = label or (os.fspath(path) if path is not None else "<scenario>")
    source = Source(label, text)
    try:
        values = tomllib.loads(text)
    except RecursionError:  # arrays or inline tables nested thousands deep
        raise ChainruleError(
            f"{label}: not valid TOML for a scenario: values nest too deeply "
            "(arrays or tables inside one another thousands of times)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        place = f"{label}:{found[1]}" if found else label
        raise ChainruleError(f"{place}: not valid TOML: {exc}") from None
    if overrides:
        source.overridden = apply_overrides(values, overrides)
    if files is None:
        files = FileAccess.beside(path)
    return Reader(source, values, path, files).scenario()
