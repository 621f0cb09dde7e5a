"""The errors chainrule raises for a user's mistake.

Every user-facing error derives from :class:`ChainruleError`, so a front end (the CLI,
the web page) can turn it into one clear line without a traceback. Internal invariants
use ``assert`` instead.
"""

from __future__ import annotations


class ChainruleError(ValueError):
    """A mistake in what the user asked for: the message names the problem."""


class ShapeError(ChainruleError):
    """Shapes that an operation cannot combine (the message names the op and shapes)."""


class DomainError(ChainruleError):
    """Values outside an operation's domain, e.g. a negative base to a non-integer power."""


class GraphError(ChainruleError):
    """Misuse of the recorded graph, e.g. a second backward through a freed graph."""


class AnomalyError(ChainruleError):
    """A NaN or an infinity made by an op in anomaly mode (see ``detect_anomaly``)."""


class DetailNeeded(ChainruleError):
    """A figure or table needs each step's values, which this run did not keep (a large
    model keeps only the loss per step unless trained with ``detail=True``; the command
    line's ``--detail``). ``what`` names the figure or table."""

    def __init__(self, what: str, message: str) -> None:
        super().__init__(message)
        self.what = what
