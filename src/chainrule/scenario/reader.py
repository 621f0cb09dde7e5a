"""From a file's TOML values to a :class:`~chainrule.scenario.record.Scenario`, table by
table, checking each key as it goes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chainrule.losses import LOSSES, loss_for_task, sigmoid_mismatch
from chainrule.optim import OPTIMIZERS
from chainrule.scenario.data_table import DataReader
from chainrule.scenario.files import FileAccess
from chainrule.scenario.keys import (
    DEFAULT_LEARNING_RATE,
    DEFAULT_OPTIMIZER,
    MODEL_KEYS,
    TOP_KEYS,
    TRAIN_KEYS,
)
from chainrule.scenario.model_table import ModelReader
from chainrule.scenario.record import Scenario
from chainrule.scenario.source import Source, Table, describe
from chainrule.scenario.train_table import TrainReader


class Reader:
    """Reads one scenario's values, part by part, checking each key as it goes."""

    def __init__(
        self, source: Source, values: dict[str, Any], path: Path | None, files: FileAccess
    ) -> None:
        self.source = source
        self.path = path
        self.top = Table(source, None, values)
        self.models = ModelReader(source)
        self.datas = DataReader(source, path, files)
        self.training = TrainReader()

    def table(self, key: str, required: bool = True) -> Table:
        """The table ``[key]`` of the file (empty when it may be left out)."""
        value = self.top.values.get(key)
        if value is None:
            if required:
                raise self.source.error(None, None, f"the [{key}] table is missing")
            value = {}
        if not isinstance(value, dict):
            raise self.top.error(key, f"expected a table [{key}], got {describe(value)}")
        return Table(self.source, key, value)

    def learning_rate(self, train: Table) -> float:
        """``learning_rate``, or ``lr`` (PyTorch's name for it): one of them, or neither."""
        if "lr" in train.values and "learning_rate" in train.values:
            set_lr, set_long = (
                ("train", k) in self.source.overridden for k in ("lr", "learning_rate")
            )
            if set_lr == set_long:
                raise train.error(
                    "lr", "lr and learning_rate are the same setting: give one of them"
                )
            return train.number("lr" if set_lr else "learning_rate", positive=True) or 0.0
        key = "lr" if "lr" in train.values else "learning_rate"
        return train.number(key, DEFAULT_LEARNING_RATE, positive=True) or DEFAULT_LEARNING_RATE

    def scenario(self) -> Scenario:
        """The scenario the file describes, every key checked."""
        self.top.check_keys(TOP_KEYS, "a scenario has")
        title = self.top.string("title") or (self.path.stem if self.path else "scenario")
        description = self.top.string("description") or ""
        data_table = self.table("data")
        model_table = self.table("model")
        parameters = self.table("parameters", required=False)
        train_table = self.table("train", required=False)
        train_table.check_keys(TRAIN_KEYS, "[train] has")
        model_table.check_keys(MODEL_KEYS, "[model] has")

        seed = train_table.integer("seed", 0)
        assert seed is not None
        loss = train_table.string("loss", choices=LOSSES)
        formula = self.models.formula(model_table)
        data = self.datas.data(data_table, model_table, formula, loss)
        given = loss is not None
        loss = loss or loss_for_task(data.task).name  # the data set's task chose it
        if formula is not None:
            self.models.check_formula_loss(
                train_table if given else data_table, formula, data, loss
            )
        factory = self.models.model_factory(model_table, formula, data, loss, parameters, seed)
        model = factory()
        mismatch = sigmoid_mismatch(loss, model.output_sigmoid)
        if mismatch is not None:
            if "output" in model_table.values or not given:
                key = "output" if "output" in model_table.values else None
                raise model_table.error(key, mismatch)
            raise train_table.error("loss", mismatch)
        optimize = self.training.optimize(train_table, model)
        stop = self.training.stop(train_table)
        return Scenario(
            title=title,
            path=self.path,
            data=data,
            model=model,
            loss=loss,
            optimizer=train_table.string("optimizer", DEFAULT_OPTIMIZER, choices=OPTIMIZERS)
            or DEFAULT_OPTIMIZER,
            learning_rate=self.learning_rate(train_table),
            optimize=optimize,
            stop=stop,
            seed=seed,
            batch_size=train_table.integer("batch_size", None, minimum=1),
            compile=train_table.boolean("compile", False),
            description=description,
            name=self.path.stem if self.path else "",
            factory=factory,
        )
