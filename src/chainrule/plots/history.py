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
from chainrule.plots import _style as style
from chainrule.plots._base import Figure, matplotlib_figure
from chainrule.plots.loss import _loss_name
from chainrule.plots.replay import divergence

#: With more trained scalars than this, the legend is left out (the lines stay).
MAX_LEGEND = 10
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


def history(
    run: Any,
    *,
    size: tuple[float, float] = (9.0, 3.6),
    dpi: float = 100,
    title: str | None = None,
) -> HistoryFigure:
    """Draw the loss per step (log scale when it spans more than two decades) and, when the
    history kept per-step records, each trained parameter's value per step.

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
    loss_name = _loss_name(None, run)
    note = divergence(run)

    panels = 2 if values else 1
    mpl = matplotlib_figure(size[0] if panels == 2 else size[0] / 1.8, size[1], dpi=dpi)
    axes = mpl.subplots(1, panels, squeeze=False, sharex=True)[0]
    ax = axes[0]
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
    if values:
        ax = axes[1]
        colours = [*style.TERM_COLOURS, style.GREEN, style.PINK, style.GREY]
        largest = 0.0
        for i, (name, series) in enumerate(values.items()):
            shown = np.where(np.isfinite(series) & (np.abs(series) < style.LARGEST), series, np.nan)
            largest = max(largest, float(np.nanmax(np.abs(shown), initial=0.0)))
            ax.plot(
                np.arange(series.size), shown, color=colours[i % len(colours)], lw=1.8, label=name
            )
        start = max((abs(float(series[0])) for series in values.values()), default=0.0)
        if largest > SYMLOG_GROWTH * max(start, 1.0):
            # Values that grew by many decades: a linear axis would show only the last
            # steps; on a symmetric log axis each decade of growth is one notch.
            style.symlog_limits(ax, np.concatenate(list(values.values())), max(start, 1.0))
        ax.set_xlabel("steps taken")
        ax.set_ylabel("value" + (" (symmetric log scale)" if ax.get_yscale() == "symlog" else ""))
        ax.set_title("trained parameters", fontsize="medium")
        ax.grid(alpha=0.25)
        if len(values) <= MAX_LEGEND:
            ax.legend(fontsize="small", loc="best", framealpha=0.85)
    if title is not None:
        mpl.suptitle(title)
    elif note is not None:
        style.warn(mpl, f"The run {note}")
    return HistoryFigure(
        kind="history",
        figure=mpl,
        loss_name=loss_name,
        step_numbers=numbers,
        losses=losses,
        values=values,
        log_scale=log_scale,
        note=note,
    )
