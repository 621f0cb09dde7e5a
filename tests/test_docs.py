"""The documentation shows real output: every documented command is run and compared.

In ``console`` blocks of the docs, a line ``$ chainrule ...`` is a command and the lines
after it, up to the next ``$`` line, are its output. A line ``...`` alone stands for any
number of left-out lines. ``$ printf '%s\\n' A B | chainrule ...`` pipes the answers A
and B into the command. A command shown without output (``demo``, which also draws
figures) is only checked to succeed. The commands of one page run in order in one
folder, so a file that one writes (``chainrule new``) is there for the next.

In ``docs/json.md`` each ``json`` block is the output of the command in the console
block just before it; the test compares keys, types and numbers. A list whose last item
is the string ``"..."`` goes on; a ``"..."`` key stands for more keys.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from chainrule import cli

DOCS = Path(__file__).parent.parent / "docs"
DOCUMENTED = ["tutorial.md", "json.md", "scenarios.md"]

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.MULTILINE | re.DOTALL)
_PIPE = re.compile(r"^printf '%s\\n' (?P<answers>.*?) \| (?P<command>chainrule .*)$")


@dataclass
class Example:
    """One documented command: where it is, its arguments, its stdin, its shown output."""

    doc: str
    line: int
    command: str
    stdin: str | None
    expected: list[str]

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.command, comments=True)[1:]


def blocks(doc: str) -> list[tuple[str, int, str]]:
    """The fenced blocks of ``doc``: (language, line of the fence, text)."""
    text = (DOCS / doc).read_text()
    return [(m[1], text.count("\n", 0, m.start()) + 1, m[2]) for m in _FENCE.finditer(text)]


def examples(doc: str) -> list[Example]:
    """Every ``$ chainrule`` command of the console blocks of ``doc``."""
    found = []
    for language, start, body in blocks(doc):
        if language != "console":
            continue
        current: Example | None = None
        for offset, line in enumerate(body.splitlines(), start=1):
            if line.startswith("$ "):
                command, stdin = line[2:], None
                piped = _PIPE.match(command)
                if piped:
                    answers = shlex.split(piped["answers"])
                    command, stdin = piped["command"], "".join(f"{a}\n" for a in answers)
                current = None
                if command.startswith("chainrule "):
                    current = Example(doc, start + offset, command, stdin, [])
                    found.append(current)
            elif current is not None:
                current.expected.append(line)
    return found


def run(example: Example) -> tuple[int, str, str]:
    """Run the command in-process, as ``chainrule`` would; return (code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    stdin = io.StringIO(example.stdin or "")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        real = cli.sys.stdin
        cli.sys.stdin = stdin
        try:
            code = cli.main(example.argv)
        finally:
            cli.sys.stdin = real
    return code, out.getvalue(), err.getvalue()


def matches(expected: list[str], actual: list[str]) -> bool:
    """Whether ``actual`` is ``expected`` with each ``...`` line standing for any lines."""
    segments: list[list[str]] = [[]]
    for line in expected:
        if line.strip() == "...":
            segments.append([])
        else:
            segments[-1].append(line)
    first, *rest = segments
    if actual[: len(first)] != first:
        return False
    if not rest:
        return len(actual) == len(first)
    position = len(first)
    for i, segment in enumerate(rest):
        last = i == len(rest) - 1
        if last:
            return not segment or (
                len(actual) - len(segment) >= position
                and actual[len(actual) - len(segment) :] == segment
            )
        for start in range(position, len(actual) - len(segment) + 1):
            if actual[start : start + len(segment)] == segment:
                position = start + len(segment)
                break
        else:
            return False
    return True  # pragma: no cover


def tidy(lines: list[str]) -> list[str]:
    """Lines without trailing spaces, and without blank lines at either end."""
    lines = [line.rstrip() for line in lines]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return lines


ALL = [example for doc in DOCUMENTED for example in examples(doc)]


def test_the_docs_have_examples():
    assert len(examples("tutorial.md")) >= 12
    assert len(examples("json.md")) >= 3
    documented = {example.argv[0] for example in examples("tutorial.md")}
    assert {"demo", "run", "explain", "scan", "scenarios", "quiz", "new"} <= documented


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """One working folder per page: its commands share the files they write."""
    return {doc: tmp_path_factory.mktemp(doc.replace(".", "-")) for doc in DOCUMENTED}


@pytest.mark.parametrize("example", ALL, ids=[example.id for example in ALL])
def test_documented_output_is_real(example, folders, monkeypatch):
    monkeypatch.chdir(folders[example.doc])
    code, out, err = run(example)
    assert code == 0, f"{example.id}: {example.command} failed: {err}"
    if not example.expected:
        return
    expected, actual = tidy(example.expected), tidy(out.splitlines())
    assert matches(expected, actual), (
        f"{example.id}: the output of `{example.command}` differs from the docs:\n"
        + "\n".join(actual)
    )


# ---------------------------------------------------------------------------------------
# docs/json.md: the JSON examples are real output
# ---------------------------------------------------------------------------------------


def json_examples() -> list[tuple[int, str, object]]:
    """(line, command, documented JSON) for each json block of docs/json.md."""
    found = []
    command = None
    for language, line, body in blocks("json.md"):
        if language == "console":
            commands = [ln[2:] for ln in body.splitlines() if ln.startswith("$ chainrule ")]
            command = commands[-1] if commands else None
        elif language == "json":
            assert command is not None, f"json.md:{line}: a json block needs a command before it"
            found.append((line, command, json.loads(body)))
            command = None
    return found


def same_shape(documented: object, real: object, where: str = "$") -> None:
    """Assert that ``real`` has ``documented``'s keys, types and numbers."""
    if isinstance(documented, dict):
        assert isinstance(real, dict), f"{where}: expected an object"
        keys = [key for key in documented if key != "..."]
        if "..." in documented:
            assert list(real)[: len(keys)] == keys, f"{where}: keys {list(real)}"
        else:
            assert list(real) == keys, f"{where}: keys {list(real)}"
        for key in keys:
            same_shape(documented[key], real[key], f"{where}.{key}")
    elif isinstance(documented, list):
        assert isinstance(real, list), f"{where}: expected a list"
        goes_on = bool(documented) and documented[-1] == "..."
        shown = documented[:-1] if goes_on else documented
        if goes_on:
            assert len(real) >= len(shown), f"{where}: only {len(real)} items"
        else:
            assert len(real) == len(shown), f"{where}: {len(real)} items, documented {len(shown)}"
        for i, (d, r) in enumerate(zip(shown, real, strict=False)):
            same_shape(d, r, f"{where}[{i}]")
    elif isinstance(documented, bool) or documented is None or isinstance(documented, str):
        assert documented == real, f"{where}: {real!r}, documented {documented!r}"
    else:
        assert isinstance(real, int | float) and not isinstance(real, bool), where
        assert real == pytest.approx(documented, rel=1e-9, abs=1e-12), f"{where}: {real!r}"


JSON_EXAMPLES = json_examples()


def test_json_md_documents_run_explain_and_scan():
    commands = [shlex.split(command)[1] for _, command, _ in JSON_EXAMPLES]
    assert {"run", "explain", "scan"} <= set(commands)


@pytest.mark.parametrize(
    ("line", "command", "documented"),
    JSON_EXAMPLES,
    ids=[f"json.md:{line}" for line, _, _ in JSON_EXAMPLES],
)
def test_json_examples_are_real(line, command, documented, folders, monkeypatch):
    monkeypatch.chdir(folders["json.md"])  # demo draws its figures in the working folder
    code, out, err = run(Example("json.md", line, command, None, []))
    assert code == 0, err
    same_shape(documented, json.loads(out))


def test_the_matcher_itself():
    assert matches(["a", "b"], ["a", "b"])
    assert not matches(["a", "b"], ["a", "b", "c"])
    assert matches(["a", "...", "c"], ["a", "x", "y", "c"])
    assert matches(["a", "..."], ["a", "x"])
    assert not matches(["a", "...", "c"], ["a", "x", "d"])
    assert matches(["...", "b", "...", "d"], ["a", "b", "c", "d"])
    with pytest.raises(AssertionError):
        same_shape({"a": 1.0}, {"a": 1.1})
    with pytest.raises(AssertionError):
        same_shape({"a": [1, "..."]}, {"a": []})
    same_shape({"a": 1, "...": "..."}, {"a": 1, "b": 2})
    with pytest.raises(AssertionError):
        same_shape({"a": 1}, {"a": 1, "b": 2})
