"""A scenario file's text and values: where each key is written, and values read with
the right type, every mistake told as ``file:line: [table] key: what was expected``.

>>> source = Source("x.toml", 'title = "t"\\n[train]\\nseed = "one"\\n')
>>> Table(source, "train", {"seed": "one"}).integer("seed")
Traceback (most recent call last):
...
chainrule.errors.ChainruleError: x.toml:3: [train] seed: expected a whole number, got 'one'
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from chainrule.errors import ChainruleError
from chainrule.text import closest, did_you_mean, normal_name

_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_KEY = re.compile(r"""^\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_\-]+))\s*(?:\.[^=]*)?=""")


class Source:
    """The text of one scenario file, to say on which line a key is written.

    ``tomllib`` gives values without positions, so the line of a key is found by reading
    the text again: table headers, ``key =`` lines, and multi-line strings skipped.

    >>> source = Source("x.toml", 'title = "t"\\n[train]\\nlearning_rate = 2\\n')
    >>> source.line_of("train", "learning_rate")
    3
    >>> str(source.error("train", "learning_rate", "too big"))
    'x.toml:3: [train] learning_rate: too big'
    """

    def __init__(self, label: str, text: str) -> None:
        self.label = label
        #: Keys set from outside the file (``--set``), by (table, key): what set them.
        self.overridden: dict[tuple[str | None, str], str] = {}
        self.lines = text.splitlines()
        self.keys: dict[tuple[str | None, str], int] = {}
        self.headers: dict[str, int] = {}
        table: str | None = None
        quote: str | None = None  # the delimiter of an open multi-line string
        for number, line in enumerate(self.lines, start=1):
            if quote is not None:
                if line.count(quote) % 2 == 1:
                    quote = None
                continue
            header = _HEADER.match(line)
            if header and not line.lstrip().startswith("[["):
                table = header[1].strip().strip("\"'")
                self.headers.setdefault(table, number)
                continue
            key = _KEY.match(line)
            if key:
                name = normal_name(next(group for group in key.groups() if group is not None))
                self.keys.setdefault((table, name), number)
            for delimiter in ('"""', "'''"):
                if line.count(delimiter) % 2 == 1:
                    quote = delimiter
                    break

    def line_of(self, table: str | None, key: str | None = None) -> int | None:
        """The line of ``key`` in ``[table]`` (or of the table's header), if written."""
        if key is not None and (table, key) in self.keys:
            return self.keys[(table, key)]
        if table is None and key is not None and key.strip("[]") in self.headers:
            return self.headers[key.strip("[]")]  # a [table] written at the top level
        return self.headers.get(table) if table is not None else None

    def where(self, table: str | None, key: str | None = None, line: int | None = None) -> str:
        """``file:line: [table] key``: the place an error message starts with."""
        told = self.overridden.get((table, key)) if key is not None else None
        line = line if line is not None or told else self.line_of(table, key)
        place = f"{self.label}:{line}" if line is not None else self.label
        if told:
            place = f"{self.label}: {told}"
        what = " ".join(part for part in (f"[{table}]" if table else "", key or "") if part)
        return f"{place}: {what}" if what else place

    def error(
        self, table: str | None, key: str | None, message: str, line: int | None = None
    ) -> ChainruleError:
        """A ChainruleError that starts with where the problem is."""
        return ChainruleError(f"{self.where(table, key, line)}: {message}")


def describe(value: Any) -> str:
    """A value as a learner wrote it, for 'got ...' in a message.

    >>> describe(True), describe({"a": 1}), describe(1.5)
    ('true', 'a table', '1.5')
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


# ---------------------------------------------------------------------------------------
# Reading values of the right type
# ---------------------------------------------------------------------------------------


class Table:
    """One table of the file: its values, and errors that say where a key is."""

    def __init__(self, source: Source, name: str | None, values: Mapping[str, Any]) -> None:
        self.source, self.name = source, name
        # Keys are names (parameters, data columns): read them as Python reads names.
        self.values: dict[str, Any] = {}
        written: dict[str, str] = {}
        for key, value in values.items():
            normal = normal_name(key)
            if normal in self.values:
                raise self.error(
                    normal,
                    f"the keys {written[normal]!r} and {key!r} are the same name as Python "
                    "reads names (Unicode NFKC)",
                )
            self.values[normal], written[normal] = value, key

    def error(self, key: str | None, message: str) -> ChainruleError:
        return self.source.error(self.name, key, message)

    def check_keys(self, allowed: tuple[str, ...], what: str = "") -> None:
        """Refuse a key that is not in ``allowed``, suggesting the nearest."""
        for key, value in self.values.items():
            if key in allowed:
                continue
            known = ", ".join(allowed)
            if self.name is None and isinstance(value, dict):  # a misspelled [table]
                close = closest(key, allowed)
                hint = f"; did you mean [{close}]?" if close is not None else ""
                raise self.source.error(
                    None, f"[{key}]", f"unknown table{hint} ({what or 'keys'}: {known})"
                )
            raise self.error(
                key, f"unknown key {key!r}{did_you_mean(key, allowed)} ({what or 'keys'}: {known})"
            )

    def string(self, key: str, default: str | None = None, choices: Any = None) -> str | None:
        value = self.values.get(key, default)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(key, f"expected a string in quotes, got {describe(value)}")
        if choices is not None and value not in choices:
            known = ", ".join(choices)
            hint = did_you_mean(value, choices)
            raise self.error(key, f"unknown value {value!r}{hint} (choose one of {known})")
        return value

    def number(
        self, key: str, default: float | None = None, positive: bool = False
    ) -> float | None:
        value = self.values.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"expected a number, got {describe(value)}")
        if not math.isfinite(value):
            raise self.error(key, f"expected a finite number, got {value}")
        if positive and value <= 0:
            raise self.error(key, f"expected a number greater than 0, got {value}")
        return float(value)

    def integer(self, key: str, default: int | None = None, minimum: int = 0) -> int | None:
        value = self.values.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected a whole number, got {describe(value)}")
        if value < minimum:
            raise self.error(key, f"expected a whole number >= {minimum}, got {value}")
        return value

    def boolean(self, key: str, default: bool = False) -> bool:
        value = self.values.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {describe(value)}")
        return value

    def strings(self, key: str) -> list[str] | None:
        value = self.values.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            raise self.error(key, f'expected a list of names, e.g. ["{value}"], got {value!r}')
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"expected a list of names in quotes, got {describe(value)}")
        if not value:
            raise self.error(key, "the list is empty")
        value = [normal_name(name) for name in value]
        for i, name in enumerate(value):
            if name in value[:i]:
                raise self.error(key, f"{name!r} is listed twice")
        return list(value)

    def column(self, key: str) -> list[float]:
        """An array of numbers (a data column)."""
        value = self.values[key]
        if not isinstance(value, list):
            raise self.error(
                key,
                f"expected an array of numbers (a data column), got {describe(value)}"
                f"{did_you_mean(key, ('csv', 'dataset', 'target'))}",
            )
        if not value:
            raise self.error(key, "the array is empty")
        for i, v in enumerate(value):
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise self.error(key, f"value {i + 1} is {describe(v)}, expected a finite number")
        return [float(v) for v in value]
