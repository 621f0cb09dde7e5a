"""pytest runs every module's docstring examples (``--doctest-modules``, pyproject.toml).

Some examples need an optional package (``pip install 'chainrule[dev]'`` brings them
all, so ``make test`` skips none). Without it, such examples are skipped, not failed, and
a module that imports the package as it loads is not collected at all.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

#: Examples that need an optional package, by the dotted name of what they document (a
#: module or package, or one function of one).
NEEDS = {
    "chainrule.plots": "matplotlib",
    "chainrule.io": "safetensors",
    "chainrule.datasets.digits": "sklearn",
    "chainrule.datasets.iris": "sklearn",
}

HERE = Path(__file__).parent


def _missing(package: str) -> bool:
    return importlib.util.find_spec(package) is None


def _path(name: str) -> Path | None:
    """The file or folder of module ``name`` under src/, if ``name`` is a module."""
    base = HERE.joinpath(*name.split("."))
    for path in (base, base.with_suffix(".py")):
        if path.exists():
            return path
    return None


#: Modules (and packages) whose package is missing: not imported, so not collected.
collect_ignore = [
    str(path)
    for name, package in NEEDS.items()
    if _missing(package) and (path := _path(name)) is not None
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not isinstance(item, pytest.DoctestItem):
            continue
        for name, package in NEEDS.items():
            if (item.name == name or item.name.startswith(f"{name}.")) and _missing(package):
                item.add_marker(pytest.mark.skip(reason=f"needs {package}"))
