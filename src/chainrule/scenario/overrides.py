"""Overrides: change any key of a scenario without editing its file, with the same checks
as the file (``chainrule run main-ideas --set train.learning_rate=0.3``, or the web page's
``{"set": {"train.learning_rate": 0.3}}``). An error about an overridden key names the
override rather than a line of the file.

>>> parse_set("train.learning_rate=0.3"), parse_set("train.loss=mse")
(('train.learning_rate', 0.3), ('train.loss', 'mse'))
>>> values = {"train": {"learning_rate": 0.1}}
>>> origins = apply_overrides(values, {"train.learning_rate": 0.3, "parameters.b3": 1})
>>> origins[("parameters", "b3")]
'--set parameters.b3=1'
>>> values
{'train': {'learning_rate': 0.3}, 'parameters': {'b3': 1}}
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from typing import Any

from chainrule.errors import ChainruleError

#: Where an overridden key came from, by (table, key) as the reader's errors name it.
Origins = dict[tuple[str | None, str], str]


def parse_set(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` read as the file would read ``VALUE`` (a TOML value: a number, true,
    a quoted string, an array, an inline table); a bare word is taken as a string.

    >>> parse_set("train.stop={ max_steps = 5 }")
    ('train.stop', {'max_steps': 5})
    >>> parse_set("learning_rate")
    Traceback (most recent call last):
    ...
    chainrule.errors.ChainruleError: --set learning_rate: expected KEY=VALUE, e.g. \
--set train.learning_rate=0.3
    """
    key, equals, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not equals or not key:
        raise ChainruleError(
            f"--set {text}: expected KEY=VALUE, e.g. --set train.learning_rate=0.3"
        )
    try:
        value = tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word such as mse or adam
    return key, value


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def apply_overrides(values: dict[str, Any], overrides: Mapping[str, Any]) -> Origins:
    """Set each ``"table.key"`` (or ``"key"``, or ``"table.key.field"``) of ``overrides``
    in the TOML ``values`` of a scenario, in place; return where each came from, for the
    reader's messages."""
    origins: Origins = {}
    for dotted, value in overrides.items():
        told = f"--set {dotted}={_shown(value)}"
        parts = [part.strip() for part in str(dotted).split(".")]
        if not all(parts) or len(parts) > 3:
            raise ChainruleError(
                f"{told}: expected a key such as title, train.learning_rate or train.stop.max_steps"
            )
        where: dict[str, Any] = values
        for depth, part in enumerate(parts[:-1]):
            inner = where.setdefault(part, {})
            if not isinstance(inner, dict):
                path = ".".join(parts[: depth + 1])
                raise ChainruleError(f"{told}: {path} is a value, not a table")
            where = inner
        where[parts[-1]] = value
        table, key = (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
        origins[(table, key)] = told
    return origins
