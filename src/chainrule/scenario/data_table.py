"""Reading ``[data]``: a built-in data set, a CSV file or arrays written in the file, with
the inputs the model uses and the target."""

from __future__ import annotations

import csv
import inspect
import io
import os
from pathlib import Path

from chainrule.datasets import (
    DATASETS,
    MAX_CSV_BYTES,
    Dataset,
    load_csv,
    load_dataset,
    read_text_file,
)
from chainrule.errors import ChainruleError
from chainrule.formula import Formula
from chainrule.losses import LOSSES
from chainrule.scenario.files import FileAccess
from chainrule.scenario.keys import CSV_KEYS, MAX_DATA_POINTS
from chainrule.scenario.source import Source, Table, describe
from chainrule.text import did_you_mean, normal_name


class DataReader:
    """Reads the ``[data]`` table of one file; ``path`` is the file (CSV files are found
    relative to its folder)."""

    def __init__(self, source: Source, path: Path | None, files: FileAccess) -> None:
        self.source = source
        self.path = path
        self.files = files

    # -- the data ----------------------------------------------------------------------

    def data(
        self, table: Table, model: Table, formula: Formula | None, loss: str | None
    ) -> Dataset:
        """The data set: a built-in one, a CSV file, or arrays written in the file."""
        explicit_inputs = model.strings("inputs")
        if "dataset" in table.values:
            return self.builtin_data(table, formula, explicit_inputs)
        wanted = self.model_inputs(formula, explicit_inputs)
        exact = explicit_inputs is not None  # every name listed must be a column
        if "csv" in table.values:
            data = self.csv_data(table, formula, wanted, exact)
        else:
            data = self.inline_data(table, wanted, exact)
        if data.n > MAX_DATA_POINTS:
            raise table.error(
                "csv" if "csv" in table.values else None,
                f"at most {MAX_DATA_POINTS:,} data points, got {data.n:,}",
            )
        task = LOSSES[loss].task if loss is not None else "regression"
        if task != data.task:
            try:
                data = Dataset(data.inputs, data.target, data.target_name, data.name, task)
            except ChainruleError as exc:
                raise self.source.error(
                    "data", data.target_name, f"{exc} (the loss {loss!r} needs it)"
                ) from None
        return data

    def model_inputs(self, formula: Formula | None, explicit: list[str] | None) -> list[str] | None:
        """The input names the model asks for: ``[model] inputs``, or the formula's names."""
        if explicit is not None:
            return explicit
        return list(formula.free_names) if formula is not None else None

    def builtin_data(
        self, table: Table, formula: Formula | None, explicit: list[str] | None
    ) -> Dataset:
        name = table.string("dataset", choices=DATASETS)
        assert name is not None
        options = [p for p in inspect.signature(DATASETS[name]).parameters]
        table.check_keys(("dataset", *options), f"data set {name!r} has the options")
        for key, value in table.values.items():
            if key != "dataset" and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise table.error(key, f"expected a number, got {describe(value)}")
        settings = {k: v for k, v in table.values.items() if k != "dataset"}
        n = settings.get("n")
        if n is not None and n > MAX_DATA_POINTS:
            raise table.error("n", f"at most {MAX_DATA_POINTS:,} data points, got {n:,}")
        try:
            data = load_dataset(name, **settings)
        except ChainruleError as exc:
            raise table.error("dataset", str(exc)) from None
        used = explicit or (
            [n for n in formula.free_names if n in data.inputs] if formula is not None else None
        )
        if used is not None:
            missing = [n for n in used if n not in data.inputs]
            if missing:
                raise table.error(
                    "dataset",
                    f"data set {name!r} has no input {missing[0]!r} "
                    f"(its inputs: {', '.join(data.input_names)})",
                )
            if list(used) != list(data.input_names):
                columns = {n: data.inputs[n] for n in used}
                data = Dataset(
                    columns, data.target, data.target_name, data.name, data.task, data.num_classes
                )
        return data

    def csv_data(
        self, table: Table, formula: Formula | None, wanted: list[str] | None, exact: bool
    ) -> Dataset:
        table.check_keys(CSV_KEYS, "CSV data has the keys")
        relative = table.string("csv")
        assert relative is not None
        base = self.path.parent if self.path is not None else Path()
        file = base / relative
        try:
            self.files.check(file, relative)  # before anything of it is read
        except ChainruleError as exc:
            raise table.error("csv", str(exc)) from None
        explicit = table.strings("inputs")
        target = _name(table.string("target"))
        inputs = explicit
        header = csv_header(file)
        if inputs is None and exact:
            inputs = wanted  # load_csv names a missing column
        elif inputs is None and wanted is not None and header is not None:
            inputs = [name for name in wanted if name in header]
            if not inputs:
                raise table.error(
                    "csv",
                    f"{file}: none of its columns ({', '.join(header)}) is a name the model "
                    f"uses ({', '.join(wanted)})",
                )
        if target is None and inputs is not None and header is not None and formula is not None:
            rest = [name for name in header if name not in inputs]
            if len(rest) == 1:
                target = rest[0]
            elif rest:
                raise table.error(
                    "csv",
                    f"{file}: the columns {', '.join(rest)} are not inputs of the model; "
                    'say which one is the target with target = "..."',
                )
        try:
            return load_csv(file, inputs=inputs, target=target)
        except ChainruleError as exc:
            raise table.error("csv", str(exc)) from None

    def inline_data(self, table: Table, wanted: list[str] | None, exact: bool) -> Dataset:
        target = _name(table.string("target"))
        columns = {key: table.column(key) for key in table.values if key != "target"}
        if not columns:
            raise table.error(
                None,
                "no data: write arrays (e.g. dosage = [0.0, 0.5, 1.0]), "
                'csv = "file.csv" or dataset = "moons"',
            )
        names = list(columns)
        if target is not None and target not in columns:
            raise table.error(
                "target",
                f"no array named {target!r}{did_you_mean(target, names)} "
                f"(arrays: {', '.join(names)})",
            )
        if wanted is not None:
            inputs = [name for name in names if name in wanted]
            if exact:  # [model] inputs: every name is an array, in the order given
                missing = [name for name in wanted if name not in columns]
                if missing:
                    raise table.error(
                        None,
                        f"[model] inputs names {missing[0]!r}, which is not an array here"
                        f"{did_you_mean(missing[0], names)} (arrays: {', '.join(names)})",
                    )
                inputs = list(wanted)
            if target is not None and target in inputs:
                raise table.error(
                    "target", f"{target!r} is the target, so the model cannot use it as an input"
                )
            rest = [name for name in names if name not in inputs and name != target]
            if target is None:
                if len(rest) == 1:
                    target = rest[0]
                elif not rest:
                    raise table.error(
                        None,
                        f"no array for the target: the model uses every array "
                        f"({', '.join(names)}) as an input",
                    )
                else:
                    raise table.error(
                        None,
                        f"the model does not use the arrays {', '.join(rest)}; one can be the "
                        'target: say which with target = "..."',
                    )
            elif rest:
                raise table.error(
                    rest[0],
                    f"the model does not use {rest[0]!r} and it is not the target "
                    f"({target!r}){did_you_mean(rest[0], wanted)}",
                )
            if not inputs:
                raise table.error(
                    None,
                    f"the model uses none of the arrays ({', '.join(names)}) as an input",
                )
        else:  # a layer model without [model] inputs: every array but the target
            if target is None:
                if len(names) > 2:
                    raise table.error(
                        None,
                        'say which array is the target with target = "...", or list the '
                        "inputs in [model] inputs = [...]",
                    )
                target = names[-1]
            inputs = [name for name in names if name != target]
            if not inputs:
                raise table.error(None, "needs at least one input array besides the target")
        lengths = {name: len(columns[name]) for name in names}
        n = lengths[target]
        for name in names:
            if lengths[name] != n:
                raise table.error(
                    name,
                    f"has {lengths[name]} values but the target {target!r} has {n}: "
                    "every array needs one value per data point",
                )
        label = self.path.stem if self.path else "data"
        try:
            return Dataset(
                {name: columns[name] for name in inputs},
                columns[target],
                target,
                label,
                "regression",
            )
        except ChainruleError as exc:
            raise table.error(None, str(exc)) from None


def _name(name: str | None) -> str | None:
    """A name the file wrote, as Python reads names (None stays None)."""
    return None if name is None else normal_name(name)


def csv_header(path: Path) -> list[str] | None:
    """The column names of a CSV file, or None when it cannot be read (load_csv will say)."""
    try:
        text = read_text_file(path, os.fspath(path), MAX_CSV_BYTES, "a CSV file")
        for row in csv.reader(io.StringIO(text, newline="")):
            if row and any(cell.strip() for cell in row):
                return [normal_name(cell.strip()) for cell in row]
    except (ChainruleError, csv.Error):
        return None
    return None
