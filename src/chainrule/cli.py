"""The ``chainrule`` command line: scenarios in, step tables and derivations out.

Every command reads a scenario (a TOML file, or a built-in one by name), asks the
engine, and prints what the explainer made of it; there are no numbers computed here.

    chainrule demo                                   the seed's story, start to end
    chainrule run main-ideas --format markdown       the ledger of a training run
    chainrule explain main-ideas --param b3          the chain rule for one slope
    chainrule scan main-ideas --param b3 --from 0 --to 4 --num 9
    chainrule predict inside-the-black-box --at dosage=0.5   the forward pass, node by node
    chainrule quiz main-ideas                        predict the next step yourself
    chainrule plot main-ideas --kind loss-curve --out ssr.png   a figure of a scenario
    chainrule scenarios                              the built-in scenarios
    chainrule new my-class.toml                      a commented scenario to edit
    chainrule export moons --to onnx --out moons.onnx   hand a model to PyTorch or ONNX
    chainrule lessons                                the built-in path of lessons
    chainrule lesson main-ideas                      play a lesson (--render handout.html)
    chainrule serve main-ideas --open                the playground: a local web page

A user's mistake (a bad file, an unknown parameter) prints one line
``chainrule: error: ...`` on stderr and exits with status 2; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import sys
import textwrap
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from chainrule import export
from chainrule.errors import ChainruleError, DetailNeeded, GraphError
from chainrule.explain import (
    chain_rule,
    check_answer,
    diagnose,
    forward_pass,
    forward_questions,
    inputs_at,
    ledger,
    quiz_points,
    quiz_questions,
    scan,
    stop_message,
    where_not_finite,
)
from chainrule.explain.document import (
    FITTED_FORMATS,
    Fitted,
    names_text,
    plain,
    render_document,
)
from chainrule.explain.notation import escape_latex
from chainrule.explain.quiz import NOT_QUITE
from chainrule.explain.scan import MAX_SCAN_POINTS
from chainrule.history import History
from chainrule.io import atomic_write, load, save
from chainrule.lesson import builtin_lessons, load_lesson, play, write_handout
from chainrule.plots import INSTALL_HINT, demo_figures
from chainrule.plots.scenario_figures import (
    UNTRAINED_KINDS,
    check_kind,
    needs_detail,
    plot_scenario,
)
from chainrule.run import Run
from chainrule.scenario import TEMPLATE, Scenario, builtin_scenarios, load_scenario, parse_set
from chainrule.text import decimals, did_you_mean, normal_name, significant
from chainrule.training import DETAIL_MAX_ROWS, DETAIL_MAX_SCALARS
from chainrule.version import SCHEMA_VERSION, __version__

#: The output formats of run, explain and scan.
FORMATS = ("table", "text", "markdown", "latex", "csv", "json")

#: The formats that are read by people: they also get the sentences around the tables.
_PROSE_FORMATS = ("table", "text", "markdown", "latex")

#: The demo's formats: its three tables do not make one CSV file (run, scan and explain
#: each give theirs).
DEMO_FORMATS = tuple(f for f in FORMATS if f != "csv")

#: How the demo scans b3 (StatQuest's pink curve: b3 from 0 to 4).
DEMO_SCAN = (0.0, 4.0, 9)

#: Where the demo draws its figures unless --out says otherwise.
DEMO_DIR = "chainrule-demo"

EXIT_OK = 0
EXIT_USER_ERROR = 2

#: The style of every remedy the command line prints: its own options (``--set
#: train.learning_rate=0.01``, ``--detail``), never the Python API's keywords.
CLI = "cli"


# ---------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------


def _emit(text: str, out: str | None, stdout: TextIO) -> None:
    """Print ``text``, or write it to the file ``out`` atomically and say so on stderr."""
    if not text.endswith("\n"):
        text += "\n"
    if out is None:
        stdout.write(text)
        return

    atomic_write(out, text.encode("utf-8"))
    print(f"wrote {out}", file=sys.stderr)


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, allow_nan=False)


def _render(result: Any, fmt: str) -> str:
    """An explainer result in ``fmt``; JSON is the result's :meth:`to_dict`."""
    if fmt == "json":
        return _json(result.to_dict())
    return result.render(fmt)


def _width(args: argparse.Namespace, stdout: TextIO) -> int | None:
    """How many columns the tables may take: ``--width`` (0: no limit); else, printing to
    a terminal (or with ``COLUMNS`` set), the terminal's width; a file or a pipe keeps
    every column."""
    if args.width is not None:
        return args.width or None
    if args.format not in FITTED_FORMATS or args.out is not None:
        return None
    if "COLUMNS" in os.environ or stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def _fitted_note(more: str) -> Callable[[Fitted], str]:
    """The line below a table fitted to the terminal: what changed, and ``more``, the
    command's options that show the whole table."""

    def note(fitted: Fitted) -> str:
        said = []
        if fitted.turned:
            said.append(f"one row per step and parameter, to fit {fitted.width} columns")
        if fitted.left_out:
            said.append(f"left out to fit {fitted.width} columns: {names_text(fitted.left_out)}")
        return f"({'; '.join(said)}; {more})"

    return note


def _render_fitted(result: Any, fmt: str, width: int | None, more: str) -> str:
    """``result`` as ``fmt`` (not JSON), its tables fitted to ``width`` (see :func:`_width`)
    with a note naming what was left out and ``more``, how to ask for it."""
    return render_document(result.document(), fmt, width, _fitted_note(more))


def _width_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--width",
        type=_whole_number,
        default=None,
        metavar="N",
        help="fit the tables to N columns (default: the terminal's width; 0: no limit, "
        "every column)",
    )


def _load(
    name: str, data_dirs: list[str] | None = None, sets: Sequence[str] | None = None
) -> Scenario:
    """The scenario ``name``; it may read files beside it and in ``data_dirs``, and each
    ``--set KEY=VALUE`` is applied (checked as the file is)."""
    overrides = dict(parse_set(text) for text in sets or ())
    return load_scenario(name, data_dirs=data_dirs or (), overrides=overrides)


def _set_option(p: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (repeatable): change a key of the scenario for this command."""
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change a key of the scenario, e.g. --set train.learning_rate=0.3 "
        "--set parameters.b3=1 (checked as the file is)",
    )


def _run(scenario: Scenario, detail: bool | None = None) -> Run:
    """Train ``scenario``; a run that cannot start is a user's error, told plainly.

    A loss that is not a number at the starting values names the first formula line (or
    output) that is not, and the data point; a loss that no trained parameter reaches
    says so instead of the engine's words about ``requires_grad``.
    """

    try:
        run = scenario.run(detail=detail)
    except GraphError as exc:  # e.g. a loss that no trained parameter reaches
        raise ChainruleError(f"{scenario.label}: {exc}") from None
    history = run.history
    if history.stop_reason == "diverged" and history.num_steps == 0:
        where = where_not_finite(run.start, scenario.data, scenario.loss)
        raise ChainruleError(
            f"{scenario.label}: training cannot start: {where or stop_message(history, CLI)}"
        )
    return run


def _no_steps(history: History, wanted: str) -> ChainruleError:
    """Why ``history`` has no step records to show ``wanted`` (e.g. "--step 2") with."""
    if history.num_steps == 0:
        return ChainruleError(
            f"the run stopped before its first step ({stop_message(history, CLI)}), so there "
            f"is no step for {wanted}"
        )
    return ChainruleError(
        f"this run kept no per-step values (more than {_detail_limits()}), so {wanted} "
        "has nothing to show; add --detail to keep them"
    )


def _detail_option(p: argparse.ArgumentParser) -> None:
    """``--detail``: keep every step's values, slopes and step sizes even of a large model."""
    p.add_argument(
        "--detail",
        action="store_true",
        default=None,
        help="keep every step's values and slopes even for a large model (by default a "
        f"model of more than {_detail_limits()} keeps only the loss per step)",
    )


def _detail_limits() -> str:

    return f"{DETAIL_MAX_SCALARS} trained values or {DETAIL_MAX_ROWS} data points"


def _model_before_step(run: Run, step: int) -> Any:
    """A new model holding the values it had just before ``step`` of the run."""
    history = run.history
    if not history.steps:
        raise _no_steps(history, f"--step {step}")
    if not 1 <= step <= len(history.steps):
        raise ChainruleError(
            f"--step {step}: the run took {len(history.steps)} steps; choose 1 to "
            f"{len(history.steps)}"
        )
    return run.model_at_step(step - 1)


def _check_parameter(scenario: Scenario, name: str) -> None:
    """Refuse a parameter name the model does not have, suggesting the nearest."""
    model = scenario.model
    known = [ref.name for ref in model.scalars()]
    if name in known:
        return
    hint = did_you_mean(name, known)
    listed = ", ".join(known) if len(known) <= 12 else f"{', '.join(known[:12])}, ..."
    raise ChainruleError(f"--param {name!r}: the model has no such parameter{hint} ({listed})")


# ---------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace, stdout: TextIO) -> int:
    """``chainrule run SCENARIO``: train, then print the ledger (or the run as JSON)."""

    scenario = _load(args.scenario, args.data_dir, args.set)
    run = _run(scenario, args.detail)
    history = run.history
    if args.save:
        save(run.model, args.save)  # written atomically; says which extra it needs
    first, last = args.first, args.last
    if args.every is None and first is None and last is None and len(history.steps) > LONG_RUN:
        first = last = LONG_RUN_ENDS  # a long run shows its ends; ask for more with the flags
    table = ledger(
        history, columns=args.columns, every=args.every or 1, first=first, last=last, style=CLI
    )
    diagnosis = diagnose(history, CLI)
    if args.format == "json":
        text = _json(_run_dict(table, diagnosis))
    elif history.stop.max_steps == 0 and args.format in _PROSE_FORMATS:
        text = _untrained(run, args.format)
    else:
        width = _width(args, stdout)
        few = " ".join(table.columns[: max(1, min(2, len(table.columns) - 1))])
        more = f"the wide table: --width 0 or --format markdown; fewer parameters: --columns {few}"
        text = _render_fitted(table, args.format, width, more)
        if args.format in _PROSE_FORMATS:
            text = f"{text.rstrip()}\n\n{diagnosis.render(args.format, width)}\n"
    if history.final_accuracy is not None and args.format in ("table", "text", "markdown"):
        text = f"{text.rstrip()}\n\naccuracy on the data: {history.final_accuracy:.1%}\n"
    _emit(text, args.out, stdout)
    return EXIT_OK


def _untrained(run: Run, fmt: str) -> str:
    """What ``run`` prints when told to take no step: that, and the forward pass at the
    starting values (see ``chainrule predict``)."""
    said = f"{stop_message(run.history)}; its forward pass:"
    shown = forward_pass(run.start, run.data, run.loss).render(fmt)
    if fmt == "latex":
        return f"{escape_latex(said)}\n\n{shown}"
    return f"{said[0].upper()}{said[1:]}\n\n{shown}"


def _run_dict(table: Any, diagnosis: Any) -> dict[str, Any]:
    """A run as JSON: the ledger's object, then ``"diagnosis"`` (how the run went)."""

    return plain({**table.to_dict(), "diagnosis": diagnosis.to_dict()})


def cmd_explain(args: argparse.Namespace, stdout: TextIO) -> int:
    """``chainrule explain SCENARIO --param NAME``: the chain rule for one slope."""

    scenario = _load(args.scenario, args.data_dir, args.set)
    _check_parameter(scenario, args.param)
    if args.step is None:
        model = scenario.build_model()
    else:
        model = _model_before_step(_run(scenario, args.detail), args.step)
    result = chain_rule(model, scenario.data, scenario.loss, args.param)
    if args.format == "json":
        text = _json(result.to_dict())
    else:
        more = "every column: --width 0 or --format markdown"
        text = _render_fitted(result, args.format, _width(args, stdout), more)
    if args.format in ("table", "text", "markdown"):
        value = model.scalar(args.param).value
        when = "At the starting values" if args.step is None else f"Before step {args.step}"
        text = f"{when}: {result.parameter} = {decimals(value)}\n\n{text}"
    _emit(text, args.out, stdout)
    return EXIT_OK


def cmd_predict(args: argparse.Namespace, stdout: TextIO) -> int:
    """``chainrule predict SCENARIO [--at NAME=VALUE]``: the forward pass, node by node."""

    scenario = _load(args.scenario, args.data_dir, args.set)
    model = scenario.build_model()
    if args.at:
        given: dict[str, list[float]] = {}
        for text in args.at:
            name, values = _at(text)
            given.setdefault(name, []).extend(values)
        result = forward_pass(model, inputs_at(scenario.data, given, "--at"))
    else:
        result = forward_pass(model, scenario.data, scenario.loss)
    _emit(_render(result, args.format), args.out, stdout)
    return EXIT_OK


def _at(text: str) -> tuple[str, list[float]]:
    """``--at dosage=0.5`` (or ``dosage=0,0.5,1``) as ``("dosage", [0.5])``."""
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ChainruleError(f"--at {text}: expected NAME=VALUE, e.g. --at dosage=0.5")
    numbers = []
    for item in values.split(","):
        try:
            number = float(item)
        except ValueError:
            raise ChainruleError(
                f"--at {text}: {item.strip()!r} is not a number (write e.g. {name}=0.5, "
                f"or {name}=0,0.5,1 for several points)"
            ) from None
        if not np.isfinite(number):
            raise ChainruleError(f"--at {text}: {item.strip()!r} is not a finite number")
        numbers.append(number)
    return normal_name(name), numbers


def _linspace(start: float, stop: float, num: int, flag: str) -> Any:

    if num < 2:
        raise ChainruleError(f"{flag}: scan at least 2 values, got {num}")
    if num > MAX_SCAN_POINTS:
        raise ChainruleError(f"{flag}: scan at most {MAX_SCAN_POINTS:,} values, got {num:,}")
    if not (np.isfinite(start) and np.isfinite(stop)) or start == stop:
        raise ChainruleError(f"the range {start:g} to {stop:g} must hold more than one value")
    return np.linspace(start, stop, num)


def cmd_scan(args: argparse.Namespace, stdout: TextIO) -> int:
    """``chainrule scan SCENARIO --param NAME --from A --to B``: the loss over a grid."""

    scenario = _load(args.scenario, args.data_dir, args.set)
    _check_parameter(scenario, args.param)
    values = _linspace(args.start, args.stop, args.num, "--num")
    values2 = None
    if args.param2 is not None:
        _check_parameter(scenario, args.param2)
        if args.start2 is None or args.stop2 is None:
            raise ChainruleError("--param2 needs --from2 and --to2 (and optionally --num2)")

        if args.num * args.num2 > MAX_SCAN_POINTS:
            raise ChainruleError(
                f"--num {args.num} x --num2 {args.num2} is {args.num * args.num2:,} grid "
                f"points; scan at most {MAX_SCAN_POINTS:,}"
            )
        values2 = _linspace(args.start2, args.stop2, args.num2, "--num2")
    elif args.start2 is not None or args.stop2 is not None:
        raise ChainruleError("--from2 and --to2 need --param2")
    result = scan(
        scenario.build_model(),
        scenario.data,
        scenario.loss,
        args.param,
        values,
        parameter2=args.param2,
        values2=values2,
    )
    if args.format == "json":
        text = _json(result.to_dict())
    else:
        more = "every column: --width 0 or --format csv; fewer: --num2 N"
        text = _render_fitted(result, args.format, _width(args, stdout), more)
    _emit(text, args.out, stdout)
    return EXIT_OK


def cmd_scenarios(args: argparse.Namespace, stdout: TextIO) -> int:
    """``chainrule scenarios``: the built-in scenarios, by name."""

    infos = builtin_scenarios()
    width = max(len(info.name) for info in infos)
    for info in infos:
        stdout.write(f"{info.name:<{width}}  {info.title}\n")
        if args.long and info.description:
            for line in textwrap.wrap(
                " ".join(info.description.split()), 76, break_on_hyphens=False
            ):
                stdout.write(f"{'':<{width}}    {line}\n")
            stdout.write("\n")
    if not args.long:
        stdout.write(
            "\nrun one with: chainrule run NAME   (descriptions: chainrule scenarios --long)\n"
        )
    return EXIT_OK


def cmd_new(args: argparse.Namespace, stdout: TextIO) -> int:
    """``chainrule new FILE``: write the commented template scenario."""

    path = Path(args.file)
    if path.exists() and not args.force:
        raise ChainruleError(f"{path}: already exists; use --force to overwrite it")
    if path.is_dir():
        raise ChainruleError(f"{path}: is a directory")
    atomic_write(path, TEMPLATE.encode("utf-8"))
    stdout.write(f"wrote {path}: edit it, then run: chainrule run {path}\n")
    return EXIT_OK


def write_demo_figures(run: Run, out_dir: Path) -> list[Path] | None:
    """The demo's figures: the network, the SSR curve with a tangent at each step, and the
    squiggle before and after training.

    Draws them with :mod:`chainrule.plots` into ``out_dir`` (created if needed) and
    returns their paths, or returns None after saying how to install matplotlib (an
    optional extra).
    """

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(f"chainrule: no figures drawn: {INSTALL_HINT}", file=sys.stderr)
        return None
    return demo_figures(run, out_dir)


def cmd_demo(args: argparse.Namespace, stdout: TextIO) -> int:
    """``chainrule demo``: the seed's story (scan, ledger, chain rule), in the terminal.

    With ``--format json`` the three parts are one object, ``{"scan", "run",
    "chain_rule"}`` after ``"schema_version"``, each as ``scan``, ``run`` and ``explain``
    print it.
    """

    fmt = args.format
    scenario = _load("main-ideas")
    start, stop, num = DEMO_SCAN
    curve = scan(
        scenario.build_model(), scenario.data, scenario.loss, "b3", _linspace(start, stop, num, "")
    )
    run = _run(scenario)
    history = run.history
    table, diagnosis = ledger(history, style=CLI), diagnose(history, CLI)
    rule = chain_rule(run.start, scenario.data, scenario.loss, "b3")
    if fmt == "json":
        story = {
            "schema_version": SCHEMA_VERSION,
            "scan": curve.to_dict(),
            "run": _run_dict(table, diagnosis),
        }
        stdout.write(_json({**story, "chain_rule": rule.to_dict()}) + "\n")
    else:
        write = stdout.write
        write("1. The SSR for b3 from 0 to 4, the other six parameters fixed (brute force):\n\n")
        write(curve.render(fmt).rstrip() + "\n\n")
        write("2. Gradient descent on b3 from 0, learning rate 0.1:\n\n")
        write(table.render(fmt).rstrip() + "\n\n")
        write(diagnosis.render(fmt).rstrip() + "\n\n")
        write("3. Where the first slope comes from, by the chain rule (b3 = 0):\n\n")
        write(rule.render(fmt).rstrip() + "\n")
    paths = write_demo_figures(run, Path(args.out))
    for path in paths or []:  # on stderr with JSON, so that stdout stays one document
        print(f"wrote {path}", file=sys.stderr if fmt == "json" else stdout)
    return EXIT_OK


def cmd_plot(args: argparse.Namespace, stdout: TextIO) -> int:
    """``chainrule plot SCENARIO --kind KIND --out FILE``: one figure of a scenario."""

    check_kind(args.kind, args.out)  # a bad kind, format or folder fails before training
    scenario = _load(args.scenario, args.data_dir, args.set)
    for name in (args.param, args.param2):
        if name is not None:
            _check_parameter(scenario, name)
    trained = args.kind not in UNTRAINED_KINDS
    detail = True if args.detail or needs_detail(args.kind, scenario.data) else None
    run = _run(scenario, detail) if trained else None  # detail None: the scenario's default
    try:
        path = plot_scenario(
            scenario,
            args.kind,
            args.out,
            parameter=args.param,
            parameter2=args.param2,
            steps=args.steps,
            decompose=args.decompose,
            dpi=args.dpi,
            run=run,
            per_point=args.per_point,
        )
    except GraphError as exc:  # e.g. a loss that no trained parameter reaches
        raise ChainruleError(f"{scenario.label}: {exc}") from None
    except DetailNeeded as exc:  # the command line's remedy, not the API's
        raise ChainruleError(
            f"{exc.what} draws each step's value and slope, but this run of "
            f"{scenario.label} kept only the loss per step (more than {_detail_limits()}): "
            "add --detail to keep them, or draw --kind history"
        ) from None
    except (ChainruleError, OSError):
        raise
    except Exception as exc:  # a figure that fails to draw: one line, not a traceback
        if getattr(args, "debug", False):
            raise
        raise ChainruleError(
            f"could not draw the {args.kind} figure of {args.scenario}: "
            f"{type(exc).__name__}: {exc} (--debug shows where)"
        ) from exc
    stdout.write(f"wrote {path}\n")
    return EXIT_OK


#: A layer model's forward-pass quiz lists its values when it has at most this many.
_QUIZ_VALUES_SHOWN = 40

#: Answers that end a quiz (as does an empty line or the end of the input).
_QUIT = ("q", "quit", "exit")


def cmd_quiz(args: argparse.Namespace, stdout: TextIO, stdin: TextIO | None = None) -> int:
    """``chainrule quiz SCENARIO``: predict each slope, step size and new value.

    Each step starts with the data points (observed, predicted, residual), so that the
    slope can be worked out from the screen. Each answer is checked against the run's own
    numbers; a known slip (wrong sign, the step size for the slope, a missing factor 2,
    one point's term) is named, and after another wrong slope the chain rule at that step
    is worked out. ``--forward`` asks for the forward pass instead: each line's value for
    one data point. Answers are read line by line from stdin, so a file of answers can be
    piped in; an empty line, ``q`` or the end of the input stops.
    """

    stdin = stdin if stdin is not None else sys.stdin
    echo = not stdin.isatty()  # piped answers are shown, so the transcript reads well
    scenario = _load(args.scenario, args.data_dir, args.set)
    write = stdout.write
    if args.point is not None and not args.forward:
        raise ChainruleError("--point chooses the data point of --forward: add --forward")
    if args.forward:
        model = scenario.build_model()
        questions = forward_questions(model, scenario.data, args.point)
        write(f"{scenario.title}\nThe forward pass at the starting values")
        if model.formula_lines:
            write(":\n" + "\n".join(f"  {a.name} = {a.expression}" for a in model.formula_lines))
        elif len(refs := list(model.scalars())) <= _QUIZ_VALUES_SHOWN:  # the values to use
            write(":\n" + "\n".join(f"  {r.name} = {significant(r.value, 6)}" for r in refs))
        write("\nAnswer with a number; an empty line or q stops.\n\n")
        right, asked, _ = _ask_all(questions, stdin, write, stdout, echo)
        return _quiz_score(write, right, asked)
    run = _run(scenario, args.detail)
    history = run.history
    if not history.steps:
        raise _no_steps(history, "a quiz")
    last = min(len(history.steps), args.steps)
    asked = right = 0
    write(f"{scenario.title}\nAnswer with a number; an empty line or q stops.\n")
    for step in range(1, last + 1):
        write(f"\nStep {step}: the data points before it\n\n")
        write(quiz_points(run, step).render("text").rstrip() + "\n\n")
        questions = quiz_questions(run, step)

        def wrong_slope(question: Any, step: int = step) -> None:
            model = _model_before_step(run, step)
            worked = chain_rule(model, scenario.data, scenario.loss, question.parameter)
            write("\n" + worked.render("text").rstrip() + "\n\n")

        r, a, stopped = _ask_all(questions, stdin, write, stdout, echo, wrong_slope)
        right, asked = right + r, asked + a
        if stopped:
            break
    return _quiz_score(write, right, asked)


def _ask_all(
    questions: Sequence[Any],
    stdin: TextIO,
    write: Callable[[str], Any],
    stdout: TextIO,
    echo: bool,
    wrong_slope: Callable[[Any], None] | None = None,
) -> tuple[int, int, bool]:
    """Ask each question until a number is typed: (right, asked, whether the learner
    stopped)."""
    right = asked = 0
    for question in questions:
        while True:
            write(f"{question.prompt} ")
            stdout.flush()
            line = stdin.readline()
            if echo:
                write(f"{line.strip()}\n")
            if not line.strip() or line.strip().lower() in _QUIT:
                write("\n" if not echo else "")
                return right, asked, True
            correct, message = check_answer(question, line)
            if correct or not message.startswith("Please type a number"):
                break
            write(f"{message}\n")
        asked += 1
        write(f"{message}\n")
        if correct:
            right += 1
        elif question.kind == "slope" and wrong_slope and message.startswith(NOT_QUITE):
            wrong_slope(question)
    return right, asked, False


def _quiz_score(write: Callable[[str], Any], right: int, asked: int) -> int:
    write(f"{right} of {asked} right.\n" if asked else "No answers given.\n")
    return EXIT_OK


# ---------------------------------------------------------------------------------------
# export: hand a model to PyTorch or ONNX
# ---------------------------------------------------------------------------------------

#: What ``chainrule export --to`` writes.
EXPORT_FORMATS = ("torch", "torch-source", "onnx")


def cmd_export(args: argparse.Namespace, stdout: TextIO) -> int:
    """``chainrule export SCENARIO_OR_MODEL_FILE --to FORMAT --out FILE``.

    A scenario is trained first, as ``run`` does; a ``.safetensors`` model file is
    exported as saved. ``torch`` writes the module's state dict (``torch.save``, PyTorch's
    (out, in) layout), ``torch-source`` a Python file with the module and its values,
    ``onnx`` an ONNX graph whose inputs are the data's columns.
    """
    columns = None
    if args.source.endswith(".safetensors"):
        model, title = load(args.source), f"The model saved in {Path(args.source).name}."
    else:
        scenario = _load(args.source, args.data_dir, args.set)
        model = _run(scenario).model  # a run that cannot start is told as `run` tells it
        columns = list(scenario.data.input_names)  # the ONNX graph's inputs, by name
        title = f"{scenario.title} (chainrule scenario {scenario.label}, trained)"
    if args.to == "torch":
        module = export.to_torch(model)  # says which extra to install when torch is missing

        import torch

        buffer = io.BytesIO()
        torch.save(module.state_dict(), buffer)
        atomic_write(args.out, buffer.getvalue())
    elif args.to == "torch-source":
        atomic_write(args.out, export.to_torch_source(model, title))
    else:
        export.to_onnx(model, args.out, columns)
    stdout.write(f"wrote {args.out}\n")
    return EXIT_OK


def add_export_command(commands: Any, command: Callable[..., argparse.ArgumentParser]) -> None:
    """Register ``chainrule export`` with the subcommand factory of :func:`build_parser`."""
    p = command(
        "export",
        "hand a model to PyTorch or ONNX: a trained scenario, or a saved .safetensors model",
        "chainrule export moons --to onnx --out moons.onnx",
    )
    p.add_argument(
        "source",
        metavar="SCENARIO_OR_MODEL_FILE",
        help="a scenario (trained first, as run does) or a model file saved as .safetensors",
    )
    _set_option(p)
    p.add_argument(
        "--data-dir",
        action="append",
        metavar="DIR",
        help="let the scenario read files in DIR too (repeatable)",
    )
    p.add_argument(
        "--to",
        required=True,
        choices=EXPORT_FORMATS,
        help="torch: the state dict (torch.save); torch-source: a Python module with its "
        "values; onnx: an ONNX graph (needs chainrule[torch] or chainrule[onnx])",
    )
    p.add_argument("--out", required=True, metavar="FILE", help="the file to write")
    p.set_defaults(handler=cmd_export)


# ---------------------------------------------------------------------------------------
# Lessons: ``chainrule lessons`` and ``chainrule lesson NAME_OR_FILE``
# ---------------------------------------------------------------------------------------


def cmd_lessons(args: argparse.Namespace, stdout: TextIO) -> int:
    """``chainrule lessons``: the built-in path of lessons, in order, one line each."""

    infos = builtin_lessons()
    width = max(len(info.name) for info in infos)
    for info in infos:
        stdout.write(f"{info.position:>2}. {info.name:<{width}}  {info.title}\n")
    stdout.write("\nplay one with: chainrule lesson NAME   (a handout: --render handout.html)\n")
    return EXIT_OK


def cmd_lesson(args: argparse.Namespace, stdout: TextIO, stdin: TextIO | None = None) -> int:
    """``chainrule lesson NAME_OR_FILE``: play a lesson, or render it with ``--render``."""

    lesson = load_lesson(args.lesson)
    if args.render is None:
        if args.no_answers:
            raise ChainruleError("--no-answers is for a handout: add --render FILE.md|FILE.html")
        play(
            lesson,
            stdout,
            stdin,
            start=args.start,
            figures=args.figures or f"{lesson.name}-figures",
        )
        return EXIT_OK
    if args.start != 1:
        raise ChainruleError("--from is for playing a lesson; a handout shows every block")
    for path in write_handout(lesson, args.render, answers=not args.no_answers):
        stdout.write(f"wrote {path}\n")
    return EXIT_OK


def _add_lesson_commands(command: Callable[[str, str, str], argparse.ArgumentParser]) -> None:
    p = command(
        "lessons", "list the built-in lessons, in the order of the path", "chainrule lessons"
    )
    p.set_defaults(handler=cmd_lessons)
    p = command(
        "lesson",
        "play a lesson in the terminal (text, live commands, checkpoints), or render a handout",
        "chainrule lesson main-ideas --render main-ideas.html",
    )
    p.add_argument("lesson", metavar="NAME_OR_FILE", help="a lesson file (.md) or a built-in name")
    p.add_argument(
        "--from",
        dest="start",
        type=_positive_int,
        default=1,
        metavar="N",
        help="start at block N (a stopped lesson says which)",
    )
    p.add_argument("--render", metavar="FILE", help="write a handout: FILE.md or FILE.html")
    p.add_argument("--no-answers", action="store_true", help="a handout without the answer key")
    p.add_argument(
        "--figures", metavar="DIR", help="where playing writes figures (default: NAME-figures)"
    )
    p.set_defaults(handler=cmd_lesson)


# ---------------------------------------------------------------------------------------
# The parser
# ---------------------------------------------------------------------------------------


def _at_least(text: str, least: int) -> int:
    """An option's whole number, ``least`` or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {least}, got {value}")
    return value


def _positive_int(text: str) -> int:
    """A whole number >= 1 (a count of steps, points, rows)."""
    return _at_least(text, 1)


#: A run of more steps than this shows its first and last LONG_RUN_ENDS steps by default
#: (100,000 rows took a minute and 771 MB to render); --every/--first/--last choose others.
LONG_RUN, LONG_RUN_ENDS = 1000, 20

#: The resolutions a figure may ask for: 600 dpi prints a slide sharply; 5,000 made a
#: 32000 x 22000 PNG in half a minute (docs/limits.md).
MIN_DPI, MAX_DPI = 10, 600


def _dpi(text: str) -> int:
    """A ``--dpi`` value, within :data:`MIN_DPI` to :data:`MAX_DPI`."""
    value = _positive_int(text)
    if not MIN_DPI <= value <= MAX_DPI:
        raise argparse.ArgumentTypeError(
            f"expected {MIN_DPI} to {MAX_DPI} pixels per inch, got {value}"
        )
    return value


def _whole_number(text: str) -> int:
    """A whole number >= 0 (``--width 0``: no limit)."""
    return _at_least(text, 0)


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (each with an example in its --help)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full traceback of an error",
    )
    parser = argparse.ArgumentParser(
        prog="chainrule",
        description="Backpropagation shown step by step on a real reverse-mode autodiff engine.",
        epilog="example: chainrule demo    (then: chainrule run main-ideas)",
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    def command(name: str, help: str, example: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=help,
            description=help,
            epilog=f"example:\n  {example}",
            parents=[common],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    scenario_help = "a scenario file (.toml) or a built-in name (see: chainrule scenarios)"

    def scenario_argument(p: argparse.ArgumentParser) -> None:
        p.add_argument("scenario", metavar="SCENARIO", help=scenario_help)
        p.add_argument(
            "--data-dir",
            action="append",
            metavar="DIR",
            help="let the scenario read files in DIR too (repeatable; by default it reads "
            "only files in its own folder or below)",
        )
        _set_option(p)

    def fmt_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--format", choices=FORMATS, default="table", help="output format (default: table)"
        )

    def out_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--out", metavar="FILE", help="write to FILE instead of the terminal")

    p = command(
        "demo", "the StatQuest story: scan b3, learn it, explain its slope", "chainrule demo"
    )
    p.add_argument(
        "--format",
        choices=DEMO_FORMATS,
        default="table",
        help="output format (default: table); json gives one object {scan, run, chain_rule}",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        default=DEMO_DIR,
        help=f"draw the figures into DIR (default: {DEMO_DIR}; needs chainrule[plot])",
    )
    p.set_defaults(handler=cmd_demo)

    p = command(
        "run",
        "train a scenario and print every step: value, loss, slope, step size, new value",
        "chainrule run main-ideas --format markdown --out steps.md",
    )
    scenario_argument(p)
    fmt_option(p)
    out_option(p)
    p.add_argument(
        "--every", type=_positive_int, default=None, metavar="K", help="show every K-th step"
    )
    p.add_argument(
        "--first",
        type=_positive_int,
        default=None,
        metavar="N",
        help="show the first N steps (of those --every keeps), with --last: '...' between",
    )
    p.add_argument(
        "--last", type=_positive_int, default=None, metavar="N", help="show the last N steps"
    )
    p.add_argument(
        "--columns",
        nargs="+",
        default=None,
        metavar="COLUMN",
        help="the parameters (or columns) to show, e.g. --columns b3",
    )
    _width_option(p)
    _detail_option(p)
    p.add_argument(
        "--save",
        metavar="FILE",
        help="save the trained model to FILE (.safetensors; load it with chainrule.io.load "
        "or export it with: chainrule export FILE --to onnx)",
    )
    p.set_defaults(handler=cmd_run)

    p = command(
        "explain",
        "the chain rule for one parameter's slope, term by term",
        "chainrule explain main-ideas --param b3 --step 2",
    )
    scenario_argument(p)
    p.add_argument(
        "--param", required=True, type=normal_name, metavar="NAME", help="the parameter, e.g. b3"
    )
    p.add_argument(
        "--step",
        type=_positive_int,
        default=None,
        metavar="K",
        help="at the values before step K of the run (default: the starting values)",
    )
    fmt_option(p)
    out_option(p)
    _width_option(p)
    _detail_option(p)
    p.set_defaults(handler=cmd_explain)

    p = command(
        "scan",
        "the loss over a range of one parameter's values (or a grid of two)",
        "chainrule scan main-ideas --param b3 --from 0 --to 4 --num 9",
    )
    scenario_argument(p)
    p.add_argument(
        "--param", required=True, type=normal_name, metavar="NAME", help="the parameter to vary"
    )
    p.add_argument("--from", dest="start", type=_float, required=True, metavar="A")
    p.add_argument("--to", dest="stop", type=_float, required=True, metavar="B")
    p.add_argument(
        "--num",
        type=_positive_int,
        default=9,
        metavar="N",
        help="how many values (default: 9; at most 100,000 points in all)",
    )
    p.add_argument(
        "--param2", type=normal_name, metavar="NAME", help="a second parameter, for a grid"
    )
    p.add_argument("--from2", dest="start2", type=_float, metavar="A")
    p.add_argument("--to2", dest="stop2", type=_float, metavar="B")
    p.add_argument("--num2", type=_positive_int, default=9, metavar="N", help="(default: 9)")
    fmt_option(p)
    out_option(p)
    _width_option(p)
    p.set_defaults(handler=cmd_scan)

    p = command(
        "predict",
        "the forward pass: each named node, the predictions and the loss, nothing trained",
        "chainrule predict inside-the-black-box --at dosage=0.5",
    )
    scenario_argument(p)
    p.add_argument(
        "--at",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="predict at these inputs instead of the data (no loss then), e.g. --at "
        "dosage=0.5 or --at dosage=0,0.5,1; give every input of the model",
    )
    fmt_option(p)
    out_option(p)
    p.set_defaults(handler=cmd_predict)

    p = command(
        "plot",
        "draw a figure of a scenario: the fit, the loss curve with its tangents, the network...",
        "chainrule plot main-ideas --kind loss-curve --out ssr.png",
    )
    scenario_argument(p)
    p.add_argument(
        "--kind",
        required=True,
        metavar="KIND",
        help="squiggle, loss-curve, contour, history, network, graph, animation, units "
        "(what each hidden unit computes), backward (the gradients on the network) or "
        "backward-animation",
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="the file to write; its suffix picks the format (png, svg, pdf, gif, html, dot)",
    )
    p.add_argument(
        "--param",
        type=normal_name,
        metavar="NAME",
        help="loss-curve, contour, animation: the parameter (default: the first trained one "
        "that the run moves)",
    )
    p.add_argument(
        "--param2", type=normal_name, metavar="NAME", help="contour: the second parameter"
    )
    p.add_argument(
        "--steps",
        nargs="+",
        metavar="STEP",
        help="squiggle: when to draw the fit: start, end or a number of steps (default: both)",
    )
    p.add_argument(
        "--decompose",
        action="store_true",
        help="squiggle: also draw the terms that add up to the output",
    )
    p.add_argument(
        "--per-point",
        action="store_true",
        help="loss-curve: also draw each step's own curve (the other parameters at that "
        "step's values); by default only the loss where the run ended",
    )
    p.add_argument(
        "--dpi",
        type=_dpi,
        metavar="N",
        help=f"pixels per inch (png), {MIN_DPI} to {MAX_DPI}",
    )
    _detail_option(p)
    p.set_defaults(handler=cmd_plot)

    p = command("scenarios", "list the built-in scenarios", "chainrule scenarios --long")
    p.add_argument("--long", action="store_true", help="also print each description")
    p.set_defaults(handler=cmd_scenarios)

    p = command(
        "quiz",
        "predict the next slope, step size and new value; the engine checks you",
        "chainrule quiz main-ideas --steps 2",
    )
    scenario_argument(p)
    p.add_argument(
        "--steps", type=_positive_int, default=3, metavar="N", help="quiz N steps (default: 3)"
    )
    p.add_argument(
        "--forward",
        action="store_true",
        help="ask for the forward pass instead: each node's value and the prediction for "
        "one data point, at the starting values",
    )
    p.add_argument(
        "--point",
        type=_positive_int,
        metavar="N",
        help="--forward: the data point to ask about, 1 to the number of points "
        "(default: the middle one)",
    )
    _detail_option(p)
    p.set_defaults(handler=cmd_quiz)

    p = command(
        "new",
        "write a commented scenario file to start from",
        "chainrule new my-class.toml && chainrule run my-class.toml",
    )
    p.add_argument("file", metavar="FILE", help="the file to write")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.set_defaults(handler=cmd_new)

    add_export_command(commands, command)
    _add_lesson_commands(command)
    _add_serve_command(command)
    return parser


# ---------------------------------------------------------------------------------------
# serve: the playground, a local web page (needs chainrule[web])
# ---------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace, stdout: TextIO) -> int:
    """``chainrule serve [SCENARIO]``: the playground on http://127.0.0.1:PORT/."""
    from chainrule.web import serve

    serve(args.scenario, host=args.host, port=args.port, open_browser=args.open)
    return EXIT_OK


def _add_serve_command(command: Callable[[str, str, str], argparse.ArgumentParser]) -> None:
    from chainrule.web import DEFAULT_HOST, DEFAULT_PORT

    p = command(
        "serve",
        "the playground: a local web page that steps, explains and quizzes a scenario",
        "chainrule serve main-ideas --open",
    )
    p.add_argument(
        "scenario", metavar="SCENARIO", nargs="?", default="main-ideas", help="opened first"
    )
    p.add_argument("--port", type=_positive_int, default=DEFAULT_PORT, metavar="N")
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        metavar="H",
        help=f"the address to listen on (default: {DEFAULT_HOST}, this machine only)",
    )
    p.add_argument("--open", action="store_true", help="open the page in a browser")
    p.set_defaults(handler=cmd_serve)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``chainrule`` command with ``argv`` (default: the process's arguments).

    Returns the exit status: 0, or 2 for a user's mistake (printed as one line).

    >>> main(["scenarios"])  # doctest: +ELLIPSIS
    main-ideas ...
    0
    """
    parser = build_parser()
    args = parser.parse_args(negative_numbers_joined(sys.argv[1:] if argv is None else argv))
    debug = getattr(args, "debug", False)
    try:
        with warnings.catch_warnings():
            if not debug:
                # A NaN or an overflow shows in the tables and the stop message; numpy's
                # RuntimeWarnings would only repeat it with engine line numbers.
                warnings.simplefilter("ignore", RuntimeWarning)
            return int(args.handler(args, sys.stdout))
    except BrokenPipeError:  # pragma: no cover (e.g. chainrule run ... | head)
        return EXIT_OK
    except (ChainruleError, OSError) as exc:
        if debug:
            raise
        message = str(exc) if isinstance(exc, ChainruleError) else _os_message(exc)
        print(f"chainrule: error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("chainrule: interrupted", file=sys.stderr)
        return 130


#: A negative number as typed: -2, -0.5, .5e3, -1e-3 (argparse takes the last for an option).
_NEGATIVE_NUMBER = re.compile(r"^-(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")


def negative_numbers_joined(argv: Sequence[str]) -> list[str]:
    """``--from -1e-3`` as ``--from=-1e-3``, so that argparse reads the number as the
    option's value: it reads ``-2`` so, but takes ``-1e-3`` for an option of its own.

    >>> negative_numbers_joined(["scan", "x", "--from", "-1e-3", "--to", "1"])
    ['scan', 'x', '--from=-1e-3', '--to', '1']
    """
    out: list[str] = []
    for token in argv:
        previous = out[-1] if out else ""
        if _NEGATIVE_NUMBER.match(token) and previous.startswith("--") and "=" not in previous:
            out[-1] = f"{previous}={token}"
        else:
            out.append(token)
    return out


def _os_message(exc: OSError) -> str:
    """``FILE: reason`` for a file the command could not read or write."""
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason
