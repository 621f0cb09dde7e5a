"""A training run at a glance: the loss per step and each trained parameter's value.

>>> from chainrule.scenario import load_scenario
>>> trained = load_scenario("main-ideas").run()
>>> model, run = trained.model, trained.history
>>> fig = history(run)
>>> fig.log_scale, fig.values["b3"][[0, -1]].round(2).tolist()
(True, [0.0, 2.61])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.errors import ChainruleError
from chainrule.history import History
from chainrule.plots import _style as style
from chainrule.plots._base import Figure, matplotlib_figure
from chainrule.plots.loss import loss_display
from chainrule.plots.replay import divergence

#: Up to this many trained scalars are named one by one; more are coloured by tensor.
MAX_LEGEND = 10
#: Ten colours that are told apart easily (matplotlib's tab10).
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
#: Parameters that grow past this many times their start get a symmetric log axis.
SYMLOG_GROWTH = 1e4


@dataclass(eq=False, kw_only=True)
class HistoryFigure(Figure):
    """Per step: ``losses`` (before each step, plus the final loss) and ``values`` per
    trained scalar (before each step, plus the final value). ``step_numbers`` counts the
    steps taken (0 = the start)."""

    loss_name: str
    step_numbers: np.ndarray
    losses: np.ndarray
    values: dict[str, np.ndarray] = field(default_factory=dict)
    log_scale: bool = False
    #: Why the run's numbers run away (``"diverged: the loss grew to ..."``), else None.
    note: str | None = None
    #: A classifier's share of points classified right per step (empty for a regression).
    accuracies: np.ndarray = field(default_factory=lambda: np.zeros(0))


def history(
    run: History,
    *,
    size: tuple[float, float] = (9.0, 3.6),
    dpi: float = 100,
    title: str | None = None,
) -> HistoryFigure:
    """Draw the loss per step (log scale when it spans more than two decades), a
    classifier's accuracy per step and, when the history kept per-step records, each
    trained parameter's value per step (named, or coloured by tensor when there are many).

    A run that diverged is drawn as far as its numbers are finite, and its title says
    how far the loss grew; parameters that grew by many decades get a symmetric log axis.
    """
    losses = run.losses_with_final()
    if losses.size == 0:
        raise ChainruleError("the history has no steps to draw (training stopped at once)")
    numbers = np.arange(losses.size)
    names = list(run.trained) if run.steps else []
    values = {
        name: np.array([s.values[name] for s in run.steps] + [run.steps[-1].new_values[name]])
        for name in names
    }
    drawable = np.isfinite(losses) & (np.abs(losses) < style.LARGEST)
    finite = losses[drawable]
    log_scale = bool(finite.size and finite.min() > 0 and finite.max() / finite.min() > 100)
    loss_name = loss_display(None, run)
    note = divergence(run)

    accuracies = _accuracies(run)
    panels = 1 + bool(values) + (accuracies is not None)
    width = size[0] * (1.0 if panels == 2 else 1 / 1.8 if panels == 1 else 1.45)
    mpl = matplotlib_figure(width, size[1], dpi=dpi)
    axes = list(mpl.subplots(1, panels, squeeze=False, sharex=True)[0])
    ax = axes.pop(0)
    ax.plot(
        numbers,
        np.where(drawable, losses, np.nan),  # a gap where the loss is not a number
        color=style.PINK,
        lw=2.0,
        marker="o" if losses.size <= 40 else None,
        ms=3.5,
    )
    if log_scale:
        style.log_limits(ax, finite)
    elif finite.size:  # a flat loss gets a few percent of its size around it
        ax.set_ylim(*style.padded_range(finite, 0.06, max(1e-9, 0.1 * np.abs(finite).max())))
    ax.set_xlabel("steps taken")
    ax.set_ylabel(loss_name + (" (log scale)" if log_scale else ""))
    ax.set_title(f"{loss_name} before each step", fontsize="medium")
    ax.grid(alpha=0.25, which="both")
    if accuracies is not None:
        ax = axes.pop(0)
        ax.plot(
            np.arange(accuracies.size),
            100 * accuracies,
            color=style.GREEN,
            lw=2.0,
            marker="o" if accuracies.size <= 40 else None,
            ms=3.5,
        )
        ax.set_ylim(-3, 103)
        ax.set_xlabel("steps taken")
        ax.set_ylabel("accuracy (%)")
        ax.set_title("points classified right", fontsize="medium")
        ax.grid(alpha=0.25)
    if values:
        ax = axes.pop(0)
        _draw_values(ax, values)
    if title is not None:
        mpl.suptitle(title)
    elif note is not None:
        style.warn(mpl, f"The run {note}")
    accuracy = accuracies if accuracies is not None else np.zeros(0)
    return HistoryFigure(
        kind="history",
        figure=mpl,
        loss_name=loss_name,
        step_numbers=numbers,
        losses=losses,
        values=values,
        log_scale=log_scale,
        note=note,
        accuracies=accuracy,
    )


def _accuracies(run: History) -> np.ndarray | None:
    """The share of points classified right before each step and at the end, for a
    classifier's run (None for a regression)."""
    recorded = run.accuracies
    if recorded is None or len(recorded) == 0:
        return None
    shares = np.asarray(recorded, dtype=np.float64)
    final = run.final_accuracy
    if final is not None and shares.size == len(run.losses_with_final()) - 1:
        shares = np.append(shares, float(final))
    return shares


def group_of(name: str) -> str:
    """The tensor a scalar belongs to: ``hidden.weight[0,1]`` is in ``hidden.weight``.

    >>> group_of("hidden.weight[0,1]"), group_of("b3")
    ('hidden.weight', 'b3')
    """
    return name.split("[", 1)[0]


def _draw_values(ax: Any, values: dict[str, np.ndarray]) -> None:
    """Each trained scalar's value per step: up to :data:`MAX_LEGEND` named one by one in
    colours that do not repeat; more are coloured by the tensor they belong to, and the
    legend names the tensors (``hidden.weight (8)``)."""
    groups = {group_of(name): 0 for name in values}
    for name in values:
        groups[group_of(name)] += 1
    by_group = len(values) > MAX_LEGEND
    palette = list(PALETTE)
    colour_of = {g: palette[i % len(palette)] for i, g in enumerate(groups)}
    largest = 0.0
    named: set[str] = set()
    for i, (name, series) in enumerate(values.items()):
        shown = np.where(np.isfinite(series) & (np.abs(series) < style.LARGEST), series, np.nan)
        largest = max(largest, float(np.nanmax(np.abs(shown), initial=0.0)))
        group = group_of(name)
        if by_group:
            colour = colour_of[group]
            label = f"{group} ({groups[group]})" if group not in named else None
            named.add(group)
        else:
            colour, label = palette[i % len(palette)], name
        ax.plot(
            np.arange(series.size), shown, color=colour, lw=1.4 if by_group else 1.8, label=label
        )
    start = max((abs(float(series[0])) for series in values.values()), default=0.0)
    if largest > SYMLOG_GROWTH * max(start, 1.0):
        # Values that grew by many decades: a linear axis would show only the last
        # steps; on a symmetric log axis each decade of growth is one notch.
        style.symlog_limits(ax, np.concatenate(list(values.values())), max(start, 1.0))
    ax.set_xlabel("steps taken")
    ax.set_ylabel("value" + (" (symmetric log scale)" if ax.get_yscale() == "symlog" else ""))
    ax.set_title(
        f"trained parameters, by tensor ({len(values)} values)"
        if by_group
        else "trained parameters",
        fontsize="medium",
    )
    ax.grid(alpha=0.25)
    style.place_legend(ax)
