"""A playground session: one browser tab's scenario, model and stepwise run.

Everything a request asks of a session is answered by the engine through the model/Run
seam: the run is :meth:`chainrule.run.Run.stepwise`'s, the step records are the
ledger's (:func:`chainrule.explain.ledger`, the objects of ``chainrule run --format
json``), the chain rule and the scan are the explainer's ``to_dict()``. This module holds
no web framework: the server (:mod:`chainrule.web.app`) only turns its answers into JSON.

>>> session = Session.from_scenario(load_scenario("main-ideas"))
>>> first = session.step(1)["steps"][0]
>>> round(first["gradients"]["b3"], 4), round(first["new_values"]["b3"], 4)
(-15.6551, 1.5655)
"""

from __future__ import annotations

import dataclasses
import math
import re
import secrets
import tempfile
import threading
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.errors import ChainruleError, GraphError
from chainrule.explain import (
    Question,
    chain_rule,
    check_answer,
    diagnose,
    forward_questions,
    ledger,
    quiz_points,
    quiz_questions,
    scan,
    stop_message,
    where_not_finite,
)
from chainrule.explain.document import Paragraph, Table, plain
from chainrule.explain.model_graph import loss_node, recording_twin
from chainrule.history import Stop
from chainrule.io import save
from chainrule.nn import Module
from chainrule.optim import OPTIMIZERS
from chainrule.plots.network import formula_diagram, layer_diagram
from chainrule.plots.squiggle import class_scores, terms_over
from chainrule.plots.units import hidden_outputs
from chainrule.run import Run
from chainrule.scenario import (
    FileAccess,
    Scenario,
    apply_overrides,
    load_scenario,
    parse_scenario,
)
from chainrule.tensor import Tensor, topological_order
from chainrule.text import did_you_mean
from chainrule.training import Trainer
from chainrule.version import SCHEMA_VERSION

#: How the page's messages write a remedy: with the playground's controls ("Learning rate
#: 0.01"), not the API's keywords (see chainrule.explain.outcome.STYLES).
PAGE = "page"
#: Bounds on what one request or one server may ask for.
MAX_SESSIONS = 200
IDLE_SECONDS = 30 * 60
MAX_STEPS_PER_REQUEST = 1000
MAX_SCAN_POINTS = 4096
MAX_UPLOAD_BYTES = 256 * 1024
#: How many answers of the scan and the chain rule a session remembers (by values).
MEMO_SIZE = 16
#: Grid sizes of the pictures the page draws.
CURVE_POINTS = 61  # a smooth curve at the page's 420 px, in half the JSON of 121
REGION_POINTS = 48
UNIT_POINTS = 24
MAX_UNITS = 8

#: The name an uploaded or typed scenario goes by in error messages.
UPLOAD_LABEL = "scenario.toml"

_LINE = re.compile(r"^[^:\n]*:(\d+):")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")


class SessionError(ChainruleError):
    """A request the playground refuses: ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def error_line(message: str) -> int | None:
    """The line of the scenario text that an error message names (``file:LINE: ...``).

    >>> error_line("scenario.toml:3: [train] seed: expected a whole number, got 'one'")
    3
    """
    found = _LINE.match(message)
    return int(found[1]) if found else None


def scenario_from_upload(
    text: str,
    files: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Scenario:
    """A scenario from text typed or uploaded into the page, with its CSV files, if any
    (and ``overrides``, the keys set as ``--set`` sets them).

    An uploaded scenario may read no file of the server: a ``csv = "..."`` key must name
    one of ``files`` (uploaded with it, by a plain file name), which are written to a
    temporary folder for the reader and removed afterwards.

    >>> scenario_from_upload('[data]\\ncsv = "/etc/passwd"\\n[model]\\nformula = "p = w * x"')
    Traceback (most recent call last):
    ...
    chainrule.web.session.SessionError: scenario.toml:2: [data] csv: '/etc/passwd' was not ...
    """
    files = dict(files or {})
    size = len(text.encode("utf-8")) + sum(len(v.encode("utf-8")) for v in files.values())
    if size > MAX_UPLOAD_BYTES:
        raise SessionError(
            f"the upload is {size:,} bytes; the playground takes at most {MAX_UPLOAD_BYTES:,}",
            413,
        )
    for name in files:
        if not _SAFE_NAME.match(name) or not name.lower().endswith(".csv"):
            raise SessionError(f"uploaded file {name!r}: expected a plain file name ending .csv")
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        values = None  # parse_scenario says where, in the CLI's words
    if values is not None and overrides:
        apply_overrides(values, overrides)  # a set data.csv is checked as the file's is
    if values is not None:
        data = values.get("data")
        csv = data.get("csv") if isinstance(data, dict) else None
        if csv is not None and (not isinstance(csv, str) or csv not in files):
            line = _key_line(text, "csv")
            place = f"{UPLOAD_LABEL}:{line}: " if line else f"{UPLOAD_LABEL}: "
            raise SessionError(
                f"{place}[data] csv: {csv!r} was not uploaded with the scenario; the "
                "playground reads no file of the server (upload the CSV file too)"
            )
    if not files:
        return parse_scenario(
            text, label=UPLOAD_LABEL, files=FileAccess.nothing(), overrides=overrides
        )
    with tempfile.TemporaryDirectory(prefix="chainrule-upload-") as folder:
        for name, content in files.items():
            (Path(folder) / name).write_text(content, encoding="utf-8")
        # the upload's own folder and nothing else of the server
        scenario = parse_scenario(
            text,
            path=Path(folder) / UPLOAD_LABEL,
            label=UPLOAD_LABEL,
            files=FileAccess.beside(Path(folder) / UPLOAD_LABEL, ()),
            overrides=overrides,
        )
    scenario.path = None  # the folder is gone: the scenario holds its data already
    return scenario


def _keeps_values(key: str) -> bool:
    """Whether setting ``key`` leaves the parameters' values as they are (training
    settings do; the data, the model, the values and what is trained do not)."""
    return key.startswith("train.") and not key.startswith("train.optimize")


def _key_line(text: str, key: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"^\s*{re.escape(key)}\s*=", line):
            return number
    return None


@dataclass
class Session:
    """One tab's playground: a scenario, its model now, and the run stepping it.

    The settings (learning rate, optimizer, stop rule) start as the scenario's; changing
    a value, a setting or what is trained starts a new run from the model as it is now
    (the ledger starts again at step 1); :meth:`reset` goes back to the scenario's start.
    """

    scenario: Scenario
    source: str = ""
    #: The CSV files uploaded with ``source`` (None: the scenario is read from its file).
    files: dict[str, str] | None = None
    #: The keys the page has set, ``{"train.learning_rate": 0.3}``, as ``--set`` sets them.
    overrides: dict[str, Any] = field(default_factory=dict)
    model: Module = field(init=False)
    run: Run | None = field(init=False, default=None)
    trainer: Trainer | None = field(init=False, default=None)
    problem: str = field(init=False, default="")
    touched: float = field(init=False, default_factory=time.monotonic)
    lock: threading.Lock = field(init=False, default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._memo: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._start = self.scenario.build_model()  # parsed once; Reset copies it
        self.model = self._start.at()

    @classmethod
    def from_scenario(
        cls, scenario: Scenario, source: str = "", files: Mapping[str, str] | None = None
    ) -> Session:
        """A session on ``scenario`` (``source`` is its TOML text, shown in the editor;
        ``files`` the CSV files uploaded with it)."""
        if not source and scenario.path is not None:
            source = Path(scenario.path).read_text(encoding="utf-8")
        return cls(scenario, source, None if scenario.path is not None else dict(files or {}))

    @property
    def learning_rate(self) -> float:
        """The learning rate the next run takes (the scenario's, or as the page set it)."""
        return self.scenario.learning_rate

    @property
    def optimizer(self) -> str:
        """The optimizer the next run takes."""
        return self.scenario.optimizer

    @property
    def stop(self) -> Stop:
        """The stop rules of the next run."""
        return self.scenario.stop

    # -- settings ----------------------------------------------------------------------

    def configure(self, settings: Mapping[str, Any]) -> None:
        """Set keys of the scenario, ``{"train.learning_rate": 0.3, "train.optimizer":
        "adam", "train.stop.max_steps": 50}``: any key, checked and worded as ``chainrule
        run --set KEY=VALUE`` is (:func:`chainrule.scenario.apply_overrides`).

        Keys of ``[train]`` keep the model's values as they are now; any other key (the
        data, the model, the parameters, ``train.optimize``) starts again from the
        scenario's values. Either way the run starts again.

        >>> session = Session.from_scenario(load_scenario("main-ideas"))
        >>> session.configure({"train.learning_rate": 0.3})
        >>> session.learning_rate
        0.3
        >>> session.configure({"train.learning_rate": -1})
        Traceback (most recent call last):
        ...
        chainrule.errors.ChainruleError: main-ideas.toml: --set train.learning_rate=-1: \
[train] learning_rate: expected a number greater than 0, got -1
        """
        if not settings:
            return
        overrides = {**self.overrides, **{str(key): value for key, value in settings.items()}}
        if self.files is None and self.scenario.path is not None:
            scenario = load_scenario(self.scenario.path, overrides=overrides)
        else:
            scenario = scenario_from_upload(self.source, self.files, overrides)
        self.scenario, self.overrides = scenario, overrides
        self._memo.clear()  # another loss or data: the answers from before do not hold
        self._start = scenario.build_model()
        if not all(_keeps_values(str(key)) for key in settings):
            self.model = self._start.at()
        self._restart()

    def set_values(
        self,
        values: Mapping[str, Any] | None = None,
        freeze: list[str] | None = None,
        train: list[str] | None = None,
    ) -> None:
        """Set parameters' values, freeze some, train others; the run starts again here."""
        for name, value in (values or {}).items():
            ref = self._scalar(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SessionError(f"values: {name}: expected a number, got {value!r}")
            if not math.isfinite(value):
                raise SessionError(f"values: {name}: expected a finite number, got {value!r}")
            ref.set(float(value))
        for names, frozen in ((freeze or [], True), (train or [], False)):
            for name in names:
                self._scalar(name).parameter.frozen = frozen
        self._restart()

    def reset(self) -> None:
        """Back to the scenario's starting values and trained parameters (the settings
        that the page changed stay)."""
        self.model = self._start.at()
        self._restart()

    def _restart(self) -> None:
        self.run, self.trainer, self.problem = None, None, ""

    def _scalar(self, name: Any) -> Any:
        if not isinstance(name, str):
            raise SessionError(f"a parameter is named by a string, got {name!r}")
        known = [ref.name for ref in self.model.scalars()]
        if name not in known:
            raise SessionError(
                f"parameter {name!r}: the model has no such parameter{did_you_mean(name, known)}"
                f" ({', '.join(known[:12])}{', ...' if len(known) > 12 else ''})"
            )
        return self.model.scalar(name)

    # -- stepping ----------------------------------------------------------------------

    def _ensure_run(self) -> tuple[Run, Trainer]:
        if self.run is None or self.trainer is None:
            s = self.scenario
            try:
                settings = s.train_settings()  # with the keys that the page has set
                self.run, self.trainer = Run.stepwise(self.model, s.data, s.label, **settings)
            except GraphError as exc:
                raise SessionError(f"{s.label}: {exc}") from None
        return self.run, self.trainer

    def step(self, steps: int = 1, fit: bool = False, terms: bool = False) -> dict[str, Any]:
        """Take up to ``steps`` steps: the new step records (``chainrule run --format
        json``'s ``steps``), ``done``, the ``parameters`` now, and when the run is over its
        ``stop_reason``, ``message`` and ``diagnosis``. ``fit`` adds the data and the fit
        at the new values (:meth:`fit`, with the terms if ``terms``): all that the page
        redraws while it runs, in one answer."""
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise SessionError(f"steps: expected a whole number >= 1, got {steps!r}")
        if steps > MAX_STEPS_PER_REQUEST:
            raise SessionError(
                f"steps: at most {MAX_STEPS_PER_REQUEST} per request, got {steps:,}", 413
            )
        run, trainer = self._ensure_run()
        taken = trainer.advance(steps)
        history = run.history
        if history.stop_reason == "diverged" and history.num_steps == 0:
            where = where_not_finite(run.start, self.scenario.data, self.scenario.loss)
            self.problem = f"training cannot start: {where or stop_message(history, PAGE)}"
        table = ledger(history, first=0, last=taken, style=PAGE)
        out: dict[str, Any] = {**table.to_dict(), "taken": taken, "done": trainer.done}
        out["steps_taken"] = history.num_steps
        out["parameters"] = self.parameters()
        if fit:
            out["fit"] = self.fit(terms=terms)
        if trainer.done:
            out["message"] = self.problem or stop_message(history, PAGE)
            out["diagnosis"] = diagnose(history, PAGE).to_dict()
        else:
            out["stop_reason"] = None
        return plain(out)

    def history_dict(self) -> dict[str, Any]:
        """Every step so far, as ``chainrule run --format json`` gives a run."""
        if self.run is None:
            return {"steps": [], "steps_taken": 0, "done": False}
        history = self.run.history
        done = bool(self.trainer and self.trainer.done)
        out = {**ledger(history, style=PAGE).to_dict(), "steps_taken": history.num_steps}
        out["done"] = done
        if done:
            out["message"] = self.problem or stop_message(history, PAGE)
            out["diagnosis"] = diagnose(history, PAGE).to_dict()
        return plain(out)

    # -- what the page shows -------------------------------------------------------------

    def state(self, brief: bool = False, terms: bool = False) -> dict[str, Any]:
        """The session as the page draws it: the parameters (value, trained), the
        settings, the network diagram, the data and the fit (with the output's terms if
        ``terms``), and the run so far (``brief``: without the run and the scenario's
        text, for a page that has them)."""
        s = self.scenario
        out = plain(
            {
                "scenario": {"name": s.name or s.label, "title": s.title, "toml": self.source},
                "description": s.description,
                "loss_name": s.loss,
                "parameters": self.parameters(),
                "settings": {
                    "learning_rate": self.learning_rate,
                    "optimizer": self.optimizer,
                    "optimizers": list(OPTIMIZERS),
                    "stop": dataclasses.asdict(self.stop),
                },
                "inputs": list(s.data.input_names),
                "target": s.data.target_name,
                "network": self._remembered(("network",), self.network),
                "fit": self.fit(terms=terms),
                "run": None if brief else self.history_dict(),
            }
        )
        if brief:
            out["scenario"]["toml"] = None
        return out

    def with_a_slope(self, count: int = 2) -> list[str]:
        """The parameters the page shows first (the selected one, then the contour's
        second): the first ``count`` trained ones whose slope at the values now is not 0
        (the engine's, from the next step taken on a copy), then other trained ones. A
        weight after a ReLU that is off for all the data gets no slope: its loss curve
        would be flat and its chain rule empty. Empty when nothing is trained."""
        trained = [p["name"] for p in self.parameters() if p["trained"]]
        try:
            slopes = self._next_step().history.steps[0].slopes
        except ChainruleError:  # (no next step: max_steps = 0, or a loss that is not a number)
            slopes = {}
        sloped = [n for n in trained if slopes.get(n, 0.0) != 0.0][:count]
        return (sloped + [n for n in trained if n not in sloped])[:count]

    def parameters(self) -> list[dict[str, Any]]:
        """``[{"name", "value", "trained"}]`` for every scalar, in the model's order."""
        return [
            {"name": ref.name, "value": ref.value, "trained": not ref.parameter.frozen}
            for ref in self.model.scalars()
        ]

    def network(self) -> dict[str, Any]:
        """The network diagram's nodes and edges (the figure's, read from the engine's
        graph), with each parameter's name on its edge or node. ``layers`` tells a layer
        network (whose edges' labels are bare values, the names too long to write on
        them) from a formula's (``w1 = 3.34``)."""

        layers = not self.model.formula_lines
        try:
            if layers:
                nodes, edges = layer_diagram(self.model, list(self.scenario.data.input_names))
            else:
                nodes, edges = formula_diagram(self.model)
        except ChainruleError:
            return {"nodes": [], "edges": [], "layers": layers}
        return {
            "layers": layers,
            "nodes": [
                {
                    "key": n.key,
                    "title": n.title,
                    "caption": n.caption,
                    "kind": n.kind,
                    "x": n.x,
                    "y": n.y,
                    "bias": n.bias_parameters,
                }
                for n in nodes
            ],
            "edges": [
                {"source": e.source, "target": e.target, "parameter": e.parameter, "label": e.label}
                for e in edges
            ],
        }

    def fit(self, terms: bool = False) -> dict[str, Any]:
        """The data and what the model makes of it: for one input the points and the
        curve (with ``terms``, the output's additive terms for a formula, which the page
        asks for only while it shows them); for two inputs the decision regions over the
        plane and a small heatmap per hidden unit."""

        data, model = self.scenario.data, self.model
        X = model.feed(data)
        y = np.asarray(data.target, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] not in (1, 2):
            return {"kind": "none"}
        if X.shape[1] == 1:
            low, high = _padded(X[:, 0])
            grid = np.linspace(low, high, CURVE_POINTS)
            out: dict[str, Any] = {
                "kind": "curve",
                "x": X[:, 0],
                "y": y.reshape(len(y), -1)[:, 0] if y.ndim > 1 else y,
                "grid": grid,
                "curve": _first_output(model.predict(grid[:, None])),
            }
            if terms and model.formula_lines:
                try:
                    out["terms"] = [
                        {"label": t.label, "values": t.values} for t in terms_over(model, grid)
                    ]
                except ChainruleError:
                    pass
            return out
        (x0, x1), (y0, y1) = _padded(X[:, 0]), _padded(X[:, 1])
        gx, gy = np.linspace(x0, x1, REGION_POINTS), np.linspace(y0, y1, REGION_POINTS)
        mesh = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
        scores = class_scores(model, mesh)
        ux, uy = np.linspace(x0, x1, UNIT_POINTS), np.linspace(y0, y1, UNIT_POINTS)
        small = np.stack(np.meshgrid(ux, uy), axis=-1).reshape(-1, 2)
        units = [
            {"name": name, "values": values.reshape(UNIT_POINTS, UNIT_POINTS)}
            for layer in hidden_outputs(model, small)
            for name, values in layer[:MAX_UNITS]
        ][: 2 * MAX_UNITS]
        return {
            "kind": "regions",
            "x": X[:, 0],
            "x2": X[:, 1],
            "y": y,
            "gx": gx,
            "gy": gy,
            # P(class 1) per grid point, or the predicted class for several classes
            "p": (scores if scores.ndim == 1 else scores.argmax(axis=1)).reshape(
                REGION_POINTS, REGION_POINTS
            ),
            "classes": 2 if scores.ndim == 1 else int(scores.shape[1]),
            "units": units,
        }

    # -- explaining -------------------------------------------------------------------

    def explain(self, parameter: str) -> dict[str, Any]:
        """The chain rule for ``parameter``'s slope at the values now, as ``chainrule
        explain --format json`` gives it."""
        self._scalar(parameter)
        s = self.scenario
        return self._remembered(
            ("explain", parameter),
            lambda: plain(chain_rule(self.model, s.data, s.loss, parameter).to_dict()),
        )

    def scan(
        self,
        parameter: str,
        start: float,
        stop: float,
        num: int,
        parameter2: str | None = None,
        start2: float | None = None,
        stop2: float | None = None,
        num2: int | None = None,
    ) -> dict[str, Any]:
        """The loss over a grid of one parameter (or two), the others at their values now,
        as ``chainrule scan --format json`` gives it."""
        self._scalar(parameter)
        values = _grid(start, stop, num, "num")
        values2 = None
        if parameter2 is not None:
            self._scalar(parameter2)
            if start2 is None or stop2 is None:
                raise SessionError("parameter2 needs from2 and to2")
            values2 = _grid(start2, stop2, num2 or 9, "num2")
            if len(values) * len(values2) > MAX_SCAN_POINTS:
                raise SessionError(
                    f"num x num2 is {len(values) * len(values2):,} grid points; at most "
                    f"{MAX_SCAN_POINTS:,} per request",
                    413,
                )
        s = self.scenario
        key = ("scan", parameter, values.tobytes(), parameter2, _bytes(values2))
        return self._remembered(
            key,
            lambda: plain(
                scan(self.model, s.data, s.loss, parameter, values, parameter2, values2).to_dict()
            ),
        )

    def _remembered(self, key: tuple[Any, ...], compute: Any) -> dict[str, Any]:
        """``compute()``, or its answer from before at the same values: a page asks for
        the loss curve, the chain rule and the diagram again after each run and each
        Reset, often at values it has seen (the start, the end of the same run)."""
        values = [np.ravel(p.data) for p in self.model.parameters()]
        full = (*key, np.concatenate(values).tobytes() if values else b"")
        found = self._memo.get(full)
        if found is None:
            found = self._memo[full] = compute()
            while len(self._memo) > MEMO_SIZE:
                del self._memo[next(iter(self._memo))]  # the oldest first
        return found

    def backward(self) -> dict[str, Any]:
        """The backward pass one node at a time: the nodes in the order backpropagation
        reaches them, from the loss back to the parameters, each with its value and the
        gradient of the loss with respect to it (the engine's own ``.grad``)."""
        s = self.scenario
        twin = recording_twin(self.model)
        twin.zero_grad()
        out = loss_node(twin, s.data, s.loss)
        order = topological_order(out)[::-1]  # the order backward() visits the nodes
        names = {id(p): name for name, p in twin.named_parameters()}
        shown: list[tuple[Tensor, str, str]] = []
        for t in order:
            if t is out:
                shown.append((t, t.name or "loss", "loss"))
            elif id(t) in names:
                shown.append((t, names[id(t)], "parameter"))
            elif t.name and t.op is not None:
                shown.append((t, t.name, "node"))
        for t, _, kind in shown:
            if kind == "node":
                t.retain_grad()
        out.backward()
        frozen = {name for name, p in twin.named_parameters() if not self._trained(name)}
        return plain(
            {
                "schema_version": SCHEMA_VERSION,
                "loss_name": s.loss,
                "nodes": [
                    {
                        "name": name,
                        "kind": kind,
                        "op": t.op.name if t.op is not None else None,
                        "values": np.atleast_1d(np.asarray(t.data, dtype=np.float64)).ravel(),
                        "gradients": np.atleast_1d(
                            np.asarray(t.grad if t.grad is not None else 1.0, dtype=np.float64)
                        ).ravel(),
                        "trained": kind == "parameter" and name not in frozen,
                    }
                    for t, name, kind in shown
                ],
            }
        )

    def _trained(self, parameter: str) -> bool:
        return not self.model.parameter(parameter).frozen

    # -- the quiz ---------------------------------------------------------------------

    #: The quizzes the page offers: the next step's slope, step size and new value, or
    #: the forward pass for one data point at the values now.
    QUIZZES = ("step", "forward")

    def _next_step(self) -> Run:
        """The next step as the engine takes it, on a copy: the session does not move."""
        s = self.scenario
        run, trainer = Run.stepwise(
            self.model.at(),
            s.data,
            s.label,
            loss=s.loss,
            optimizer=self.optimizer,
            learning_rate=self.learning_rate,
            stop={"max_steps": 1},
            batch_size=s.batch_size,
            seed=s.seed,
            detail=True,
        )
        trainer.advance(1)
        if not run.history.steps:
            raise SessionError("the quiz has no next step: " + stop_message(run.history, PAGE))
        return run

    def _questions(self, kind: Any) -> tuple[list[Question], Run | None]:
        if kind not in self.QUIZZES:
            raise SessionError(f"kind: choose {' or '.join(self.QUIZZES)}, got {kind!r}")
        if kind == "forward":
            return forward_questions(self.model, self.scenario.data), None
        run = self._next_step()
        return quiz_questions(run, 1), run

    def quiz(self, kind: Any = "step") -> dict[str, Any]:
        """The questions of the ``kind`` quiz (see :attr:`QUIZZES`), without their answers,
        and for a step the data points it is worked out from (observed, predicted,
        residual) as a table: ``{"kind", "questions", "points"?}``."""
        questions, run = self._questions(kind)
        out: dict[str, Any] = {
            "kind": kind,
            "questions": [
                {"index": i, "kind": q.kind, "parameter": q.parameter, "prompt": q.prompt}
                for i, q in enumerate(questions)
            ],
        }
        if run is not None:
            try:
                points = quiz_points(run, 1)
            except ChainruleError:  # more than one output per point: no table
                return out
            table, *note = points.document()
            assert isinstance(table, Table)
            out["points"] = plain(
                {
                    "columns": [c.text for c in table.columns],
                    "rows": table.rows,
                    # the columns of whole numbers (a class, a row number): 1, not 1.0000
                    "whole": [
                        all(isinstance(row[j], int) for row in table.rows)
                        for j in range(len(table.columns))
                    ],
                    "note": note[0].text if note and isinstance(note[0], Paragraph) else "",
                }
            )
        return out

    def check(self, index: Any, answer: Any, kind: Any = "step") -> dict[str, Any]:
        """Whether ``answer`` answers question ``index`` of the ``kind`` :meth:`quiz` (the
        engine's numbers, checked by :func:`chainrule.explain.check_answer`)."""
        questions, _ = self._questions(kind)
        if isinstance(index, bool) or not isinstance(index, int):
            raise SessionError(f"index: expected a whole number, got {index!r}")
        if not 0 <= index < len(questions):
            raise SessionError(f"index: choose 0 to {len(questions) - 1}, got {index}")
        if not isinstance(answer, str):
            answer = str(answer)
        correct, message = check_answer(questions[index], answer)
        return {"correct": correct, "message": message}

    # -- files ------------------------------------------------------------------------

    def safetensors(self) -> bytes:
        """The model at its values now, as a safetensors file (:func:`chainrule.io.save`)."""

        with tempfile.TemporaryDirectory(prefix="chainrule-model-") as folder:
            path = save(self.model, Path(folder) / "model.safetensors")
            return path.read_bytes()


def _bytes(values: np.ndarray | None) -> bytes | None:
    return None if values is None else values.tobytes()


def _padded(values: np.ndarray, share: float = 0.1) -> tuple[float, float]:
    low, high = float(np.min(values)), float(np.max(values))
    pad = (high - low) * share or 1.0
    return low - pad, high + pad


def _first_output(predictions: np.ndarray) -> np.ndarray:
    out = np.asarray(predictions, dtype=np.float64)
    return out.reshape(len(out), -1)[:, 0] if out.ndim > 1 else out


def _grid(start: Any, stop: Any, num: Any, flag: str) -> np.ndarray:
    for name, value in (("from", start), ("to", stop)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SessionError(f"{name}: expected a number, got {value!r}")
    if isinstance(num, bool) or not isinstance(num, int) or num < 2:
        raise SessionError(f"{flag}: scan at least 2 values, got {num!r}")
    if num > MAX_SCAN_POINTS:
        raise SessionError(
            f"{flag}: at most {MAX_SCAN_POINTS:,} values per request, got {num:,}", 413
        )
    if not (math.isfinite(start) and math.isfinite(stop)) or start == stop:
        raise SessionError(f"the range {start:g} to {stop:g} must hold more than one value")
    return np.linspace(float(start), float(stop), num)


class Sessions:
    """The sessions of one server: at most ``limit`` at once, each dropped after
    ``idle`` seconds without a request.

    >>> store = Sessions(limit=1)
    >>> key = store.add(Session.from_scenario(load_scenario("main-ideas")))
    >>> store.get(key).scenario.name
    'main-ideas'
    >>> store.add(Session.from_scenario(load_scenario("main-ideas")))
    Traceback (most recent call last):
    ...
    chainrule.web.session.SessionError: too many sessions (1 open); close a tab or try again later
    """

    def __init__(self, limit: int = MAX_SESSIONS, idle: float = IDLE_SECONDS) -> None:
        self.limit, self.idle = limit, idle
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    def expire(self, now: float | None = None) -> int:
        """Drop the sessions idle for longer than ``idle`` seconds; return how many."""
        now = time.monotonic() if now is None else now
        with self._lock:
            old = [k for k, s in self._sessions.items() if now - s.touched > self.idle]
            for key in old:
                del self._sessions[key]
        return len(old)

    def add(self, session: Session) -> str:
        """Keep ``session``; return its id (unguessable, for one tab)."""
        self.expire()
        with self._lock:
            if len(self._sessions) >= self.limit:
                raise SessionError(
                    f"too many sessions ({len(self._sessions)} open); close a tab or try "
                    "again later",
                    429,
                )
            key = secrets.token_urlsafe(12)
            self._sessions[key] = session
        return key

    def get(self, key: str) -> Session:
        """The session ``key``; a 404 error if there is none (or it expired)."""
        with self._lock:
            session = self._sessions.get(key)
        if session is None or time.monotonic() - session.touched > self.idle:
            raise SessionError(
                f"no session {key!r}: it never existed or expired after "
                f"{self.idle / 60:g} idle minutes; reload the page",
                404,
            )
        session.touched = time.monotonic()
        return session


__all__ = [
    "IDLE_SECONDS",
    "MAX_SCAN_POINTS",
    "MAX_SESSIONS",
    "MAX_STEPS_PER_REQUEST",
    "MAX_UPLOAD_BYTES",
    "Session",
    "SessionError",
    "Sessions",
    "error_line",
    "load_scenario",
    "scenario_from_upload",
]
