"""Every command's JSON against its schema (docs/schemas/, referenced from docs/json.md).

The schemas are the machine-readable half of the contract in docs/json.md: each
``--format json`` output must validate, across the kinds of run the commands print (a
converged run, a large model without per-step detail, a diverged run, nothing trained).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chainrule import cli
from chainrule.version import SCHEMA_VERSION

jsonschema = pytest.importorskip("jsonschema")
referencing = pytest.importorskip("referencing")

SCHEMAS = Path(__file__).parent.parent / "docs" / "schemas"
COMMANDS = ("run", "explain", "scan", "predict", "demo")


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))


def validator(name: str):
    """A validator for ``name``'s schema that resolves the others (demo refers to three)."""
    resources = [
        (f"{other}.schema.json", referencing.Resource.from_contents(schema(other)))
        for other in COMMANDS
    ]
    registry = referencing.Registry().with_resources(resources)
    checker = jsonschema.Draft202012Validator(schema(name), registry=registry)
    return checker


def output(capsys, *argv: str) -> dict:
    assert cli.main([*argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name", COMMANDS)
def test_each_schema_is_a_valid_schema(name):
    jsonschema.Draft202012Validator.check_schema(schema(name))
    assert schema(name)["properties"]["schema_version"] == {"const": SCHEMA_VERSION}


@pytest.mark.parametrize(
    "argv",
    [
        ("run", "main-ideas"),
        ("run", "three-parameters", "--every", "5", "--columns", "b3"),
        ("run", "moons", "--every", "150"),
        ("run", "main-ideas", "--set", "train.learning_rate=0.5"),
        ("run", "main-ideas", "--set", "train.stop.max_steps=0"),
        ("run", "iris-three", "--every", "100"),
        ("explain", "main-ideas", "--param", "b3"),
        ("explain", "main-ideas", "--param", "w1", "--step", "2"),
        ("explain", "moons", "--param", "hidden1.weight[0,1]"),
        ("explain", "iris-three", "--param", "output.bias[0]"),
        ("explain", "iris", "--param", "hidden.weight[0,0]"),  # a ReLU off: zero_factors
        ("scan", "main-ideas", "--param", "b3", "--from", "0", "--to", "4"),
        ("scan", "main-ideas", "--param", "b3", "--from", "0", "--to", "4", "--param2", "w3",
         "--from2", "-2", "--to2", "0", "--num2", "3"),
        ("predict", "main-ideas"),
        ("predict", "inside-the-black-box", "--at", "dosage=0,0.5"),
        ("predict", "iris-three"),
        ("predict", "moons"),
        ("demo",),
    ],
    ids=lambda argv: " ".join(argv),
)  # fmt: skip
def test_every_commands_json_follows_its_schema(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # demo draws its figures in the working folder
    out = output(capsys, *argv)
    validator(argv[0]).validate(out)
    assert next(iter(out)) == "schema_version"


def test_an_object_of_version_1_is_refused(capsys):
    out = output(capsys, "run", "main-ideas")
    old = {k: v for k, v in out.items() if k not in ("schema_version", "loss_name")}
    old["loss"] = "ssr"
    for step in old["steps"]:
        step["slopes"] = step.pop("gradients")
    errors = list(validator("run").iter_errors(old))
    assert {e.validator for e in errors} >= {"required"}
    messages = " ".join(e.message for e in errors)
    assert "'schema_version' is a required property" in messages
    assert "'gradients' is a required property" in messages


def test_json_md_links_every_schema():
    text = (SCHEMAS.parent / "json.md").read_text(encoding="utf-8")
    for name in COMMANDS:
        assert f"(schemas/{name}.schema.json)" in text


def test_the_web_pages_objects_follow_the_same_schemas():
    pytest.importorskip("starlette")
    from chainrule.scenario import load_scenario
    from chainrule.web.session import Session

    session = Session.from_scenario(load_scenario("main-ideas"))
    validator("explain").validate(session.explain("b3"))
    validator("scan").validate(session.scan("b3", 0.0, 4.0, 9))
    validator("scan").validate(session.scan("b3", 0.0, 4.0, 3, "w3", -2.0, 0.0, 2))
    validator("run").validate(session.step(2))  # a run still going: stop_reason is null
    session.step(100)
    validator("run").validate(session.history_dict())
    walk = session.backward()
    assert walk["loss_name"] == "ssr"
    assert {"values", "gradients"} <= set(walk["nodes"][0])
