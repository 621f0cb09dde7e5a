"""A training run at a glance: the loss per step and each trained parameter's value.

>>> from chainrule.scenario import load_scenario
>>> model, run = load_scenario("main-ideas").run()
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
from chainrule.plots._replay import trained_names
from chainrule.plots.loss import _loss_name

#: With more trained scalars than this, the legend is left out (the lines stay).
MAX_LEGEND = 10


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


def history(
    run: Any,
    *,
    size: tuple[float, float] = (9.0, 3.6),
    dpi: float = 100,
    title: str | None = None,
) -> HistoryFigure:
    """Draw the loss per step (log scale when it spans more than two decades) and, when the
    history kept per-step records, each trained parameter's value per step.
    """
    losses = np.asarray(list(run.losses), dtype=np.float64)
    if losses.size == 0:
        raise ChainruleError("the history has no steps to draw (training stopped at once)")
    final = float(getattr(run, "final_loss", np.nan))
    if np.isfinite(final):
        losses = np.append(losses, final)
    numbers = np.arange(losses.size)
    names = trained_names(run) if run.steps else []
    values = {
        name: np.array([s.values[name] for s in run.steps] + [run.steps[-1].new_values[name]])
        for name in names
    }
    finite = losses[np.isfinite(losses)]
    log_scale = bool(finite.size and finite.min() > 0 and finite.max() / finite.min() > 100)
    loss_name = _loss_name(None, run)

    panels = 2 if values else 1
    mpl = matplotlib_figure(size[0] if panels == 2 else size[0] / 1.8, size[1], dpi=dpi)
    axes = mpl.subplots(1, panels, squeeze=False)[0]
    ax = axes[0]
    ax.plot(
        numbers, losses, color=style.PINK, lw=2.0, marker="o" if losses.size <= 40 else None, ms=3.5
    )
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel("steps taken")
    ax.set_ylabel(loss_name + (" (log scale)" if log_scale else ""))
    ax.set_title(f"{loss_name} before each step", fontsize="medium")
    ax.grid(alpha=0.25, which="both")
    if values:
        ax = axes[1]
        colours = [*style.TERM_COLOURS, style.GREEN, style.PINK, style.GREY]
        for i, (name, series) in enumerate(values.items()):
            ax.plot(
                numbers[: series.size], series, color=colours[i % len(colours)], lw=1.8, label=name
            )
        ax.set_xlabel("steps taken")
        ax.set_ylabel("value")
        ax.set_title("trained parameters", fontsize="medium")
        ax.grid(alpha=0.25)
        if len(values) <= MAX_LEGEND:
            ax.legend(fontsize="small", loc="best", framealpha=0.85)
    if title is not None:
        mpl.suptitle(title)
    return HistoryFigure(
        kind="history",
        figure=mpl,
        loss_name=loss_name,
        step_numbers=numbers,
        losses=losses,
        values=values,
        log_scale=log_scale,
    )
