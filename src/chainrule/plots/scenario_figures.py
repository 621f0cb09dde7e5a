"""Figures of a scenario, by kind: what ``chainrule plot`` and ``chainrule demo`` draw.

>>> import tempfile, pathlib
>>> from chainrule.scenario import load_scenario
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> plot_scenario(load_scenario("main-ideas"), "network", folder / "net.svg").name
'net.svg'
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chainrule.errors import ChainruleError
from chainrule.plots._base import STATIC_FORMATS, format_of

#: Each kind of figure and the file formats it can be saved in.
KINDS: dict[str, tuple[str, ...]] = {
    "squiggle": STATIC_FORMATS,
    "loss-curve": STATIC_FORMATS,
    "contour": STATIC_FORMATS,
    "history": STATIC_FORMATS,
    "network": STATIC_FORMATS,
    "graph": ("dot", "svg", "png", "pdf"),
    "animation": ("gif", "html"),
    "units": STATIC_FORMATS,
    "backward": STATIC_FORMATS,
    "backward-animation": ("gif", "html"),
}

#: The files ``chainrule demo`` draws, in order.
DEMO_FILES = ("network.png", "loss-curve.png", "squiggle-before.png", "squiggle-after.png")


def check_kind(kind: str, out: str | os.PathLike[str]) -> str:
    """Refuse an unknown kind, a format the kind cannot write, or a folder that is not
    there, before any training is done. Returns the format.

    >>> check_kind("animation", "descent.gif")
    'gif'
    """
    if kind not in KINDS:
        raise ChainruleError(f"unknown kind {kind!r}; choose one of: {', '.join(KINDS)}")
    fmt = format_of(out, KINDS[kind], kind)
    folder = Path(out).parent
    if not folder.is_dir():
        raise ChainruleError(f"cannot write {out}: the folder {folder} does not exist")
    return fmt


def _trained_scalars(model: Any) -> list[str]:
    return [ref.name for ref in model.scalars(trainable_only=True)]


def _parameter(model: Any, given: str | None, flag: str, other: str | None = None) -> str:
    """``given`` as the model spells it, else the first trained scalar that is not ``other``."""
    if given is not None:
        return model.scalar(given).name
    trained = [name for name in _trained_scalars(model) if name != other]
    if not trained:
        told = ", ".join(_trained_scalars(model)) or "nothing"
        raise ChainruleError(f"name the parameter with {flag} (the scenario trains {told})")
    return trained[0]


def figure_of_scenario(
    scenario: Any,
    kind: str,
    parameter: str | None = None,
    parameter2: str | None = None,
    steps: Sequence[str | int] | None = None,
    decompose: bool = False,
    per_point: bool = False,
) -> Any:
    """Train the scenario when the kind needs a history, and draw the figure.

    ``backward`` and ``backward-animation`` draw the first backward pass (the model as
    the file starts it); ``units`` the hidden units after training."""
    if kind not in KINDS:
        raise ChainruleError(f"unknown kind {kind!r}; choose one of: {', '.join(KINDS)}")
    from chainrule import plots

    start = scenario.build_model()
    # Check the parameter names before training, so a typo fails at once.
    if parameter is not None:
        start.scalar(parameter)
    if parameter2 is not None:
        start.scalar(parameter2)
    if kind == "network":
        return plots.network(start, list(scenario.data.input_names))
    if kind == "graph":
        return plots.model_graph(start, scenario.data, scenario.loss)
    if kind == "backward":
        return plots.backward(start, scenario.data, scenario.loss)
    if kind == "backward-animation":
        return plots.backward_flow(start, scenario.data, scenario.loss)
    two_classes = len(scenario.data.input_names) == 2 and scenario.data.task != "regression"
    # A classifier's film needs each step's values, which a large model keeps on request.
    model, run = (
        scenario.run(detail=True) if kind == "animation" and two_classes else scenario.run()
    )
    if kind == "units":
        return plots.units(model, scenario.data)
    if kind == "squiggle":
        # A run without per-step records (a large model) knows only its end.
        chosen = steps if steps else (["start", "end"] if run.steps else ["end"])
        return plots.squiggle(model, scenario.data, run, chosen, decompose=decompose)
    if kind == "history":
        return plots.history(run)
    if kind == "animation" and two_classes:
        return plots.animation(model, scenario.data, scenario.loss, parameter, run)
    first = _parameter(start, parameter, "--param")
    if kind == "loss-curve":
        return plots.loss_curve(
            model, scenario.data, scenario.loss, first, run, per_point=per_point
        )
    if kind == "animation":
        return plots.animation(model, scenario.data, scenario.loss, first, run)
    second = _parameter(start, parameter2, "--param2", other=first)
    return plots.contour(model, scenario.data, scenario.loss, first, second, run)


def plot_scenario(
    scenario: Any,
    kind: str,
    out: str | os.PathLike[str],
    parameter: str | None = None,
    parameter2: str | None = None,
    steps: Sequence[str | int] | None = None,
    decompose: bool = False,
    dpi: float | None = None,
    per_point: bool = False,
) -> Path:
    """Draw ``kind`` for ``scenario`` into the file ``out`` (format from its suffix)."""
    check_kind(kind, out)
    figure = figure_of_scenario(
        scenario, kind, parameter, parameter2, steps, decompose, per_point=per_point
    )
    return figure.save(out, dpi=dpi)


def demo_figures(scenario: Any, history: Any, out_dir: str | os.PathLike[str]) -> list[Path]:
    """The seed's figures: the network, the loss curve with its tangents, and the squiggle
    before and after training (built from the blue, orange and green curves).

    ``history`` is the scenario's run (as the demo trained it); the folder is created.
    """
    from chainrule import plots

    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ChainruleError(f"cannot create the folder {folder}: {exc.strerror or exc}") from None
    start = scenario.build_model()
    trained = _trained_scalars(start)
    figures = [
        plots.network(
            start,
            list(scenario.data.input_names),
            title=f"Before training: {', '.join(trained[:4])}{' ...' if len(trained) > 4 else ''}"
            " will be learned, the others stay",
        ),
        plots.loss_curve(start, scenario.data, scenario.loss, trained[0], history),
        plots.squiggle(
            start, scenario.data, history, ["start"], decompose=True, title="Before training"
        ),
        plots.squiggle(
            start, scenario.data, history, ["end"], decompose=True, title="After training"
        ),
    ]
    paths = []
    for name, figure in zip(DEMO_FILES, figures, strict=True):
        paths.append(figure.save(folder / name))
        figure.close()
    return paths
