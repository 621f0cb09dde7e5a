"""The Scenario: what one scenario file asks for (data, a model at its starting values,
training settings), ready to run.

>>> from chainrule.scenario import load_scenario
>>> load_scenario("main-ideas").stop
Stop(step_size=0.001, loss=None, max_steps=1000)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chainrule.datasets import Dataset
from chainrule.history import Stop
from chainrule.nn import Module
from chainrule.run import Run
from chainrule.scenario.builtin import builtin_dir


@dataclass
class Scenario:
    """A loaded scenario: data, a model at its starting values, and training settings.

    ``model`` is built at the starting values when the file is loaded;
    :meth:`build_model` makes a fresh one (with only ``optimize`` left unfrozen) each
    time, so :meth:`run` can be called again and gives the same numbers.

    >>> from chainrule.scenario import load_scenario
    >>> scenario = load_scenario("three-parameters")
    >>> scenario.optimize, scenario.model.scalar("w3").value
    (['w3', 'w4', 'b3'], 0.36)
    """

    title: str
    path: Path | None
    data: Dataset
    model: Module
    loss: str
    optimizer: str
    learning_rate: float
    optimize: list[str]
    stop: Stop
    seed: int = 0
    batch_size: int | None = None
    #: Whether training traces one step and replays it (:func:`chainrule.train`'s
    #: ``compile``): the same numbers, faster for a larger model.
    compile: bool = False
    description: str = ""
    name: str = ""
    #: Builds a fresh model at the starting values (what :meth:`build_model` calls).
    factory: Callable[[], Module] = field(default=lambda: Module(), repr=False, compare=False)

    def build_model(self) -> Module:
        """A fresh model at the starting values; parameters not in ``optimize`` are frozen.

        >>> from chainrule.scenario import load_scenario
        >>> model = load_scenario("main-ideas").build_model()
        >>> [name for name, p in model.named_parameters() if not p.frozen]
        ['b3']
        """
        model = self.factory()
        model.freeze()
        model.unfreeze(*self.optimize)
        return model

    def run(self, detail: bool | None = None) -> Run:
        """Train a fresh model as the file says; return the :class:`~chainrule.run.Run`.

        ``detail`` is passed to :func:`chainrule.training.train` (whether every step records
        the values, slopes and step sizes; by default it does for small models).

        >>> from chainrule.scenario import load_scenario
        >>> run = load_scenario("main-ideas").run()
        >>> len(run.history.steps), run.history.stop_reason
        (10, 'step_size')
        """
        options: dict[str, Any] = {}
        if detail is not None:
            options["detail"] = detail
        return Run.train(
            self.build_model(), self.data, label=self.label, **self.train_settings(), **options
        )

    def train_settings(self) -> dict[str, Any]:
        """What the file says about training, as :func:`chainrule.train` takes it (one
        home for the command line, the page and :meth:`run`).

        >>> from chainrule.scenario import load_scenario
        >>> sorted(load_scenario("main-ideas").train_settings())
        ['batch_size', 'compile', 'learning_rate', 'loss', 'optimizer', 'seed', 'stop']
        """
        return {
            "loss": self.loss,
            "optimizer": self.optimizer,
            "learning_rate": self.learning_rate,
            "stop": self.stop,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "compile": self.compile,
        }

    @property
    def label(self) -> str:
        """The scenario as messages name it: its file as given, or its built-in name.

        >>> from chainrule.scenario import load_scenario
        >>> load_scenario("main-ideas").label
        'main-ideas'
        """
        if self.path is None:
            return self.name or "<scenario>"
        if self.path.parent == builtin_dir():
            return self.path.stem
        return str(self.path)

    @property
    def parameter_names(self) -> list[str]:
        """Every parameter of the model, trained or not.

        >>> from chainrule.scenario import load_scenario
        >>> load_scenario("main-ideas").parameter_names
        ['w1', 'b1', 'w2', 'b2', 'w3', 'w4', 'b3']
        """
        return [name for name, _ in self.model.named_parameters()]
