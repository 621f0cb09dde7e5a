"""The explainer: training runs and gradients turned into tables and derivations.

Everything here reads the engine's graph and the numbers a training run recorded; nothing
computes a slope a second way. Each explanation is data first (rows, paths, factors) and
is rendered by ``render(obj, fmt)`` or ``obj.render(fmt)`` in one of :data:`FORMATS`
(``table``, ``text``, ``markdown``, ``latex``, ``csv``, ``json``); ``obj.to_dict()`` is
its JSON contract.

- :func:`ledger`: StatQuest's step table of a training run, and why it stopped.
- :func:`forward_pass`: each named node, the predictions, the residuals and the loss at
  the model's values (StatQuest's first video), before any training.
- :func:`scan`: the loss over a grid of one or two parameters ("brute force").
- :func:`chain_rule`: ``dSSR/dw1`` as a product of local derivatives, every path, every
  data point (with its observed and predicted value and residual), read off the engine's
  graph.
- :func:`stop_message`: why a run stopped, in one sentence.
- :func:`diagnose`: converged, diverged, growing, oscillating, crawling, stalled or
  dead, and why.
- :func:`quiz_questions` and :func:`check_answer`: predict a step, then compare; a wrong
  answer that a known slip gives is named. :func:`quiz_points` shows each data point's
  observed and predicted value and residual; :func:`forward_questions` walks the forward
  pass.
- :func:`where_not_finite` and :func:`unreached`: why a loss is not a number, and which
  parameters it does not depend on.

>>> from chainrule.datasets import dosage
>>> from chainrule.formula import Formula
>>> model = Formula("predicted = w * dosage + b", inputs=["dosage"], values={"w": 1.0, "b": 0.0})
>>> print(chain_rule(model, dosage(), "ssr", "b").render("text").splitlines()[0])
dSSR/db = dSSR/dpredicted x dpredicted/db
"""

from chainrule.explain.chain import ChainPath, ChainRule, Factor, chain_rule
from chainrule.explain.diagnose import Diagnosis, diagnose
from chainrule.explain.document import FORMATS, Explanation, render
from chainrule.explain.forward import ForwardPass, forward_pass, inputs_at
from chainrule.explain.ledger import Ledger, ledger
from chainrule.explain.model_graph import unreached, where_not_finite
from chainrule.explain.outcome import stop_message
from chainrule.explain.quiz import (
    Check,
    Mistake,
    Question,
    QuizPoints,
    check_answer,
    forward_questions,
    quiz_points,
    quiz_questions,
)
from chainrule.explain.scan import Scan, scan

__all__ = [
    "FORMATS",
    "ChainPath",
    "ChainRule",
    "Check",
    "Diagnosis",
    "Explanation",
    "Factor",
    "ForwardPass",
    "Ledger",
    "Mistake",
    "Question",
    "QuizPoints",
    "Scan",
    "chain_rule",
    "check_answer",
    "diagnose",
    "forward_pass",
    "inputs_at",
    "forward_questions",
    "ledger",
    "quiz_points",
    "quiz_questions",
    "render",
    "scan",
    "stop_message",
    "unreached",
    "where_not_finite",
]
