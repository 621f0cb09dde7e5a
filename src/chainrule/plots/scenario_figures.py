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

from chainrule.datasets import Dataset
from chainrule.errors import ChainruleError
from chainrule.losses import Loss
from chainrule.nn.module import Module
from chainrule.plots._base import STATIC_FORMATS, format_of
from chainrule.plots.animation import animation
from chainrule.plots.backward import backward, backward_flow
from chainrule.plots.graph import model_graph
from chainrule.plots.history import history as history_figure
from chainrule.plots.loss import contour, loss_curve
from chainrule.plots.network import network
from chainrule.plots.squiggle import squiggle
from chainrule.plots.units import units
from chainrule.run import Run
from chainrule.scenario import Scenario

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


def _trained_scalars(model: Module) -> list[str]:
    return [ref.name for ref in model.scalars(trainable_only=True)]


def _parameter(run: Run, given: str | None, flag: str, other: str | None = None) -> str:
    """``given`` as the model spells it, else the first trained scalar (not ``other``) that
    the run moved: a weight after a ReLU that is off for all the data keeps its value,
    and its loss curve would be a flat line that teaches nothing. When none moved, the
    first trained scalar."""
    if given is not None:
        return run.start.scalar(given).name
    trained = [name for name in _trained_scalars(run.start) if name != other]
    if not trained:
        told = ", ".join(_trained_scalars(run.start)) or "nothing"
        raise ChainruleError(f"name the parameter with {flag} (the scenario trains {told})")
    moved = (n for n in trained if run.start.scalar(n).value != run.model.scalar(n).value)
    return next(moved, trained[0])


#: The kinds drawn from a model alone, before any training.
UNTRAINED_KINDS = ("network", "graph", "backward", "backward-animation")


def decision_film(data: Dataset) -> bool:
    """Whether an animation of ``data`` shows decision regions (two inputs, classes)."""
    return len(data.input_names) == 2 and data.task != "regression"


def needs_detail(kind: str, data: Dataset) -> bool:
    """Whether the figure needs each step's values even of a large model (a classifier's
    film): the run is then trained with ``detail=True``."""
    return kind == "animation" and decision_film(data)


def figure_of_model(model: Module, data: Dataset, loss: str | Loss, kind: str) -> Any:
    """A figure of an untrained model (a kind of :data:`UNTRAINED_KINDS`).

    >>> from chainrule.scenario import load_scenario
    >>> s = load_scenario("main-ideas")
    >>> type(figure_of_model(s.model, s.data, s.loss, "network")).__name__
    'NetworkFigure'
    """
    if kind == "network":
        return network(model, list(data.input_names))
    if kind == "graph":
        return model_graph(model, data, loss)
    if kind == "backward":
        return backward(model, data, loss)
    if kind == "backward-animation":
        return backward_flow(model, data, loss)
    raise ChainruleError(f"a {kind} figure needs a training run; draw it with figure_of_run")


def figure_of_run(
    run: Run,
    kind: str,
    parameter: str | None = None,
    parameter2: str | None = None,
    steps: Sequence[str | int] | None = None,
    decompose: bool = False,
    per_point: bool = False,
) -> Any:
    """Draw the figure ``kind`` of a training ``run`` (the kinds of :data:`KINDS`).

    ``backward`` and ``backward-animation`` draw the first backward pass (the model as
    the run starts it); ``units`` the hidden units after training."""
    if kind not in KINDS:
        raise ChainruleError(f"unknown kind {kind!r}; choose one of: {', '.join(KINDS)}")
    if kind in UNTRAINED_KINDS:
        return figure_of_model(run.start, run.data, run.loss, kind)
    model, data, loss, history = run.model, run.data, run.loss, run.history
    if kind == "units":
        return units(model, data)
    if kind == "squiggle":
        # A run without per-step records (a large model) knows only its end.
        chosen = steps if steps else (["start", "end"] if history.steps else ["end"])
        return squiggle(model, data, history, chosen, decompose=decompose)
    if kind == "history":
        return history_figure(history)
    if kind == "animation" and decision_film(data):
        return animation(model, data, loss, parameter, history)
    first = _parameter(run, parameter, "--param")
    if kind == "loss-curve":
        return loss_curve(model, data, loss, first, history, per_point=per_point)
    if kind == "animation":
        return animation(model, data, loss, first, history)
    second = _parameter(run, parameter2, "--param2", other=first)
    return contour(model, data, loss, first, second, history)


def plot_scenario(
    scenario: Scenario,
    kind: str,
    out: str | os.PathLike[str],
    parameter: str | None = None,
    parameter2: str | None = None,
    steps: Sequence[str | int] | None = None,
    decompose: bool = False,
    dpi: float | None = None,
    run: Run | None = None,
    per_point: bool = False,
) -> Path:
    """Draw ``kind`` for ``scenario`` into the file ``out`` (format from its suffix).

    A kind drawn from the model alone (:data:`UNTRAINED_KINDS`) needs no training; the
    others draw ``run``, the scenario trained by the caller (who says why a run failed,
    and trains with ``detail=True`` when :func:`needs_detail`): figures never train.
    Parameter names are checked first, so a typo fails at once.
    """
    check_kind(kind, out)
    for name in (parameter, parameter2):
        if name is not None:
            scenario.model.scalar(name)
    if kind in UNTRAINED_KINDS:
        figure = figure_of_model(scenario.build_model(), scenario.data, scenario.loss, kind)
    elif run is None:
        raise ChainruleError(
            f"a {kind} figure draws a training run: pass run=scenario.run()"
            + (" (with detail=True)" if needs_detail(kind, scenario.data) else "")
        )
    else:
        figure = figure_of_run(
            run, kind, parameter, parameter2, steps, decompose, per_point=per_point
        )
    return figure.save(out, dpi=dpi)


def demo_figures(run: Run, out_dir: str | os.PathLike[str]) -> list[Path]:
    """The seed's figures: the network, the loss curve with its tangents, and the squiggle
    before and after training (built from the blue, orange and green curves), drawn
    from ``run`` (as the demo trained it) into ``out_dir`` (created if needed).
    """
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ChainruleError(f"cannot create the folder {folder}: {exc.strerror or exc}") from None
    start, data, history = run.start, run.data, run.history
    trained = _trained_scalars(start)
    figures = [
        network(
            start,
            list(data.input_names),
            title=f"Before training: {', '.join(trained[:4])}{' ...' if len(trained) > 4 else ''}"
            " will be learned, the others stay",
        ),
        loss_curve(start, data, run.loss, trained[0], history),
        squiggle(start, data, history, ["start"], decompose=True, title="Before training"),
        squiggle(start, data, history, ["end"], decompose=True, title="After training"),
    ]
    paths = []
    for name, figure in zip(DEMO_FILES, figures, strict=True):
        paths.append(figure.save(folder / name))
        figure.close()
    return paths
