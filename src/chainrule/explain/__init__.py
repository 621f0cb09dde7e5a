"""The explainer: training runs and gradients turned into tables and derivations.

Everything here reads the engine's graph and the numbers a training run recorded; nothing
computes a slope a second way.
"""

from chainrule.explain.chain import ChainPath, ChainRule, Factor, chain_rule
from chainrule.explain.document import FORMATS, Explanation, render
from chainrule.explain.ledger import Ledger, ledger
from chainrule.explain.scan import Scan, scan

__all__ = [
    "FORMATS",
    "ChainPath",
    "ChainRule",
    "Explanation",
    "Factor",
    "Ledger",
    "Scan",
    "chain_rule",
    "ledger",
    "render",
    "scan",
]
