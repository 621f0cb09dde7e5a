"""What a scenario file may hold: its keys, the defaults a file may leave out, and the
largest sizes it may ask for (``docs/limits.md`` lists them).

>>> "learning_rate" in TRAIN_KEYS, DEFAULT_STOP["step_size"]
(True, 0.001)
"""

from __future__ import annotations

from dataclasses import fields

from chainrule.history import Stop

#: The keys each part of a scenario file may hold.
TOP_KEYS = ("title", "description", "data", "model", "parameters", "train")
MODEL_KEYS = ("formula", "layers", "activation", "output", "inputs")
TRAIN_KEYS = (
    "loss",
    "optimize",
    "optimizer",
    "learning_rate",
    "lr",
    "stop",
    "batch_size",
    "seed",
    "compile",
)
STOP_KEYS = tuple(f.name for f in fields(Stop))  # the stop rules a History records
CSV_KEYS = ("csv", "inputs", "target")

#: The largest sizes a scenario may ask for: a teaching example is small, and a typo such
#: as ``n = 1000000000`` should be an error, not a machine out of memory.
MAX_DATA_POINTS = 100_000
MAX_PARAMETERS = 1_000_000
MAX_STEPS = 1_000_000

#: Training settings a file may leave out.
DEFAULT_OPTIMIZER = "gradient_descent"
DEFAULT_LEARNING_RATE = 0.1
DEFAULT_STOP: dict[str, float | int] = {"step_size": 0.001, "max_steps": 1000}
