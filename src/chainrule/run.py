"""A Run: a model, its data and what training did, the one thing every explanation reads.

The command line, the explainer, the figures and the web page all take a :class:`Run`.
It holds the model at its starting values and after training, the data, the loss and the
:class:`~chainrule.history.History`; the model at any step is the starting model at the
values the History recorded (:meth:`Run.model_at_step`), made through the model protocol
(:meth:`~chainrule.nn.Module.at`), so nobody copies, mutates or rebuilds a model on the
side.

>>> from chainrule.datasets import dosage
>>> from chainrule.formula import Formula
>>> model = Formula("predicted = w * dosage + b", inputs=["dosage"], values={"w": 0.0, "b": 0.0})
>>> run = Run.train(model, dosage(), learning_rate=0.1, stop={"max_steps": 3})
>>> run.history.num_steps, run.model_at_step(0).scalar("b").value
(3, 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chainrule.datasets import Dataset
from chainrule.history import History
from chainrule.losses import Loss
from chainrule.nn.module import Module
from chainrule.training import Trainer, train


@dataclass
class Run:
    """A trained ``model`` (its values at the end), ``start`` (the same model at its
    starting values, untouched), the ``data``, the ``loss`` (a name or a function) and
    the ``history``; ``label`` names the run in messages (a scenario's name or file)."""

    model: Module
    start: Module
    data: Dataset
    loss: str | Loss
    history: History
    label: str = ""

    @classmethod
    def train(cls, model: Module, data: Dataset, label: str = "", **settings: Any) -> Run:
        """Train ``model`` on ``data`` with :func:`chainrule.train`'s ``settings``, keeping
        a copy of the starting values."""
        model.feed(data)  # a formula written without inputs= learns them from the data
        start = model.at()
        history = train(model, data, **settings)
        return cls(model, start, data, settings.get("loss", "ssr"), history, label)

    @classmethod
    def stepwise(
        cls, model: Module, data: Dataset, label: str = "", **settings: Any
    ) -> tuple[Run, Trainer]:
        """A Run whose training moves forward when its :class:`~chainrule.training.Trainer`
        is advanced (the web page's Step button); the Run's History grows with it.

        >>> from chainrule.scenario import load_scenario
        >>> s = load_scenario("main-ideas")
        >>> run, trainer = Run.stepwise(s.build_model(), s.data, stop=s.stop)
        >>> trainer.advance(2), run.history.num_steps
        (2, 2)
        """
        model.feed(data)  # a formula written without inputs= learns them from the data
        start = model.at()
        trainer = Trainer(model, data, **settings)
        return cls(model, start, data, settings.get("loss", "ssr"), trainer.history, label), trainer

    def model_at_step(self, steps_taken: int) -> Module:
        """The model after ``steps_taken`` steps (0: the start), a new copy each time.

        Frozen parameters keep their starting values; trained ones take the values that
        the History recorded (see :meth:`History.values_after`).
        """
        return self.start.at(self.history.values_after(steps_taken))

    def model_at(self, values: dict[str, float] | None = None) -> Module:
        """The trained model with some scalars set to ``values`` (a copy)."""
        return self.model.at(values)
