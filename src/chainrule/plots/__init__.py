"""Figures that read the engine's numbers: the fit, the loss curve, the network, the graph.

Every function returns a figure object of ours: it holds the matplotlib figure (headless,
Agg) AND the numbers it drew, read from the engine, a training history or
:func:`chainrule.explain.scan` (never from a second formula). ``fig.save("name.png")``
writes it (format from the suffix, written atomically); in a notebook it shows itself.

Importing this package does not import matplotlib; drawing does, and without it the
functions raise a ChainruleError that says ``pip install 'chainrule[plot]'``.

>>> import chainrule as cr
>>> from chainrule import plots
>>> from chainrule.datasets import dosage
>>> model = cr.Formula("predicted = w * dosage + b", inputs=["dosage"])
>>> plots.graph(model(dosage().inputs)).dot.startswith("digraph")
True
"""

from chainrule.plots._base import INSTALL_HINT, Figure, require_matplotlib
from chainrule.plots.animation import AnimationFigure, animation
from chainrule.plots.backward import BackwardFigure, BackwardFlowFigure, backward, backward_flow
from chainrule.plots.graph import GraphFigure, dot_available, graph, model_graph
from chainrule.plots.history import HistoryFigure, history
from chainrule.plots.loss import ContourFigure, LossCurveFigure, contour, loss_curve
from chainrule.plots.network import NetworkFigure, network
from chainrule.plots.scenario_figures import KINDS, demo_figures, plot_scenario
from chainrule.plots.squiggle import DecisionFigure, SquiggleFigure, squiggle
from chainrule.plots.units import UnitsFigure, units

__all__ = [
    "INSTALL_HINT",
    "KINDS",
    "AnimationFigure",
    "BackwardFigure",
    "BackwardFlowFigure",
    "ContourFigure",
    "DecisionFigure",
    "Figure",
    "GraphFigure",
    "HistoryFigure",
    "LossCurveFigure",
    "NetworkFigure",
    "SquiggleFigure",
    "UnitsFigure",
    "animation",
    "backward",
    "backward_flow",
    "contour",
    "demo_figures",
    "dot_available",
    "graph",
    "history",
    "loss_curve",
    "model_graph",
    "network",
    "plot_scenario",
    "require_matplotlib",
    "squiggle",
    "units",
]
