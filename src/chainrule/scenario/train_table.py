"""Reading ``[train]``: which parameters to train and when to stop."""

from __future__ import annotations

from chainrule.errors import ChainruleError
from chainrule.history import Stop
from chainrule.nn import Module
from chainrule.scenario.keys import DEFAULT_STOP, MAX_STEPS, STOP_KEYS
from chainrule.scenario.source import Table, describe
from chainrule.text import did_you_mean


class TrainReader:
    """Reads the training settings of ``[train]`` that need the model or a record."""

    # -- training ----------------------------------------------------------------------

    def optimize(self, table: Table, model: Module) -> list[str]:
        names = [name for name, _ in model.named_parameters()]
        chosen = table.strings("optimize")
        if chosen is None:
            return names
        result: list[str] = []
        for pattern in chosen:
            if "[" in pattern:
                raise table.error(
                    "optimize",
                    f"{pattern!r}: a whole parameter is trained or frozen, not one entry; "
                    f"write {pattern.split('[', 1)[0]!r}",
                )
            try:
                model.freeze(pattern)
            except ChainruleError:
                raise table.error(
                    "optimize",
                    f"the model has no parameter {pattern!r}{did_you_mean(pattern, names)} "
                    f"(its parameters: {', '.join(names)})",
                ) from None
            result.extend(n for n, p in model.named_parameters() if p.frozen and n not in result)
            model.unfreeze()
        return [name for name in names if name in result]

    def stop(self, table: Table) -> Stop:
        value = table.values.get("stop", DEFAULT_STOP)
        if not isinstance(value, dict):
            raise table.error(
                "stop",
                "expected a table, e.g. stop = { step_size = 0.001, max_steps = 1000 }, "
                f"got {describe(value)}",
            )
        for key in value:
            if key not in STOP_KEYS:
                raise table.error(
                    "stop",
                    f"unknown key {key!r}{did_you_mean(key, STOP_KEYS)} "
                    f"(stop has: {', '.join(STOP_KEYS)})",
                )
        steps = value.get("max_steps")
        if isinstance(steps, int) and not isinstance(steps, bool) and steps > MAX_STEPS:
            raise table.error("stop", f"max_steps: at most {MAX_STEPS:,}, got {steps:,}")
        try:  # the rules' own checks (one home: chainrule.history.Stop), at the file's line
            return Stop(**value)
        except ChainruleError as exc:
            raise table.error("stop", str(exc).removeprefix("stop: ")) from None
