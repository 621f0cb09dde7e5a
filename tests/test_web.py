"""The playground's JSON API, through Starlette's test client: every endpoint, the seed's
numbers (StatQuest's b3 example), and every refusal as a 4xx with one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx2")

from starlette.testclient import TestClient  # noqa: E402

from chainrule.web.app import create_app  # noqa: E402
from chainrule.web.session import MAX_UPLOAD_BYTES, Session, Sessions  # noqa: E402

# The seed's numbers (StatQuest, Backpropagation Main Ideas), b3 from 0, learning rate 0.1.
FIRST_SLOPE = -15.6551083806
FIRST_STEP_SIZE = -1.5655108381
FIRST_NEW_B3 = 1.5655108381
B3_AFTER_10 = 2.6089111372
SSR_AT_0 = 20.4235976776
SCAN_B3 = [20.423598, 13.346043, 7.768489, 3.690935, 1.113381, 0.035827, 0.458273, 2.380718]

SEED_TOML = """title = "mine"
[data]
dosage = [0.0, 0.5, 1.0]
observed = [0.0, 1.0, 0.0]
[model]
formula = "predicted = w * dosage + b"
[parameters]
w = 0.5
b = 0.0
[train]
learning_rate = 0.1
"""


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app())


def open_session(client: TestClient, **body: object) -> str:
    response = client.post("/api/sessions", json=body or {"scenario": "main-ideas"})
    assert response.status_code == 201, response.text
    return response.json()["session"]


def assert_refused(response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) <= {"error", "line"}
    message = body["error"]
    assert "\n" not in message and message
    for word in words:
        assert word in message
    return message


# -- the seed through the API --------------------------------------------------------------


def test_scenarios_lists_the_builtin_ones(client):
    body = client.get("/api/scenarios").json()
    names = [s["name"] for s in body["scenarios"]]
    assert names[:2] == ["main-ideas", "three-parameters"] and "moons" in names
    assert all(s["title"] for s in body["scenarios"])


def test_a_session_says_what_is_trained(client):
    body = client.post("/api/sessions", json={"scenario": "main-ideas"}).json()
    params = {p["name"]: p for p in body["parameters"]}
    assert params["b3"] == {"name": "b3", "value": 0.0, "trained": True}
    assert params["w1"]["value"] == pytest.approx(3.34) and not params["w1"]["trained"]
    assert body["settings"]["learning_rate"] == 0.1
    assert body["run"]["steps"] == []


def test_first_step_is_the_seeds(client):
    sid = open_session(client)
    body = client.post(f"/api/sessions/{sid}/step").json()
    (step,) = body["steps"]
    assert step["step"] == 1
    assert step["loss"] == pytest.approx(SSR_AT_0)
    assert step["gradients"]["b3"] == pytest.approx(FIRST_SLOPE)
    assert step["step_sizes"]["b3"] == pytest.approx(FIRST_STEP_SIZE)
    assert step["new_values"]["b3"] == pytest.approx(FIRST_NEW_B3)
    assert body["done"] is False and body["stop_reason"] is None


def test_steps_are_the_clis_json_and_stop_on_the_step_size(client, capsys):
    sid = open_session(client)
    records = []
    for _ in range(4):  # 1 + 3 + 3 + 3 steps asked; the rule fires at step 10
        records += client.post(f"/api/sessions/{sid}/step", json={"steps": 3}).json()["steps"]
    body = client.post(f"/api/sessions/{sid}/step", json={"steps": 5}).json()
    records += body["steps"]
    assert [r["step"] for r in records] == list(range(1, 11))
    assert records[-1]["new_values"]["b3"] == pytest.approx(B3_AFTER_10)
    assert body["done"] and body["stop_reason"] == "step_size"
    assert "2.61 after 10 steps" in body["message"]
    assert body["diagnosis"]["kind"] == "converged"
    # The same objects as `chainrule run main-ideas --format json` gives
    from chainrule.cli import main

    assert main(["run", "main-ideas", "--format", "json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert records == cli["steps"]
    assert body["diagnosis"] == cli["diagnosis"]
    # A step after the end takes none and says so again
    again = client.post(f"/api/sessions/{sid}/step").json()
    assert again["taken"] == 0 and again["steps"] == [] and again["done"]


def test_reset_goes_back_to_the_start(client):
    sid = open_session(client)
    client.post(f"/api/sessions/{sid}/step", json={"steps": 3})
    body = client.post(f"/api/sessions/{sid}/reset").json()
    assert {p["name"]: p["value"] for p in body["parameters"]}["b3"] == 0.0
    step = client.post(f"/api/sessions/{sid}/step").json()["steps"][0]
    assert step["step"] == 1 and step["gradients"]["b3"] == pytest.approx(FIRST_SLOPE)


def test_values_set_freeze_and_train(client):
    sid = open_session(client)
    body = client.post(
        f"/api/sessions/{sid}/values", json={"values": {"b3": 2.0}, "train": ["w3"]}
    ).json()
    params = {p["name"]: p for p in body["parameters"]}
    assert params["b3"]["value"] == 2.0 and params["w3"]["trained"]
    step = client.post(f"/api/sessions/{sid}/step").json()["steps"][0]
    assert sorted(step["gradients"]) == ["b3", "w3"]
    # dSSR/db3 = 6 b3 - 15.66
    assert step["gradients"]["b3"] == pytest.approx(6 * 2.0 - 15.6551083806)
    body = client.post(f"/api/sessions/{sid}/values", json={"freeze": ["w3"]}).json()
    assert not {p["name"]: p for p in body["parameters"]}["w3"]["trained"]


def cli_error(*args: str) -> str:
    """The one line that ``chainrule ARGS`` prints on stderr, without ``chainrule: error: ``."""
    done = subprocess.run(
        [sys.executable, "-m", "chainrule", *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    return done.stderr.strip().removeprefix("chainrule: error: ")


@pytest.mark.parametrize(
    "key, value, option",
    [
        ("train.learning_rate", -1, "train.learning_rate=-1"),
        ("train.optimizer", "adma", "train.optimizer=adma"),
        ("train.stop.max_steps", -1, "train.stop.max_steps=-1"),
        ("train.lerning_rate", 0.3, "train.lerning_rate=0.3"),
    ],
)
def test_a_bad_set_reads_as_the_clis(client, key, value, option):
    expected = cli_error("run", "main-ideas", "--set", option)
    created = client.post("/api/sessions", json={"scenario": "main-ideas", "set": {key: value}})
    assert assert_refused(created, 400) == expected
    sid = open_session(client)
    changed = client.post(f"/api/sessions/{sid}/values", json={"set": {key: value}})
    assert assert_refused(changed, 400) == expected


def test_any_scenario_key_can_be_set(client):
    sid = open_session(client, set={"parameters.b3": 1.0, "train.stop.max_steps": 2})
    state = client.get(f"/api/sessions/{sid}").json()
    assert {p["name"]: p["value"] for p in state["parameters"]}["b3"] == 1.0
    assert state["settings"]["stop"]["max_steps"] == 2
    run = client.post(f"/api/sessions/{sid}/step", json={"steps": 10}).json()
    assert run["taken"] == 2 and run["stop_reason"] == "max_steps"
    # a training setting keeps the values the run reached; other keys start again
    client.post(f"/api/sessions/{sid}/values", json={"set": {"train.learning_rate": 0.2}})
    b3 = run["steps"][-1]["new_values"]["b3"]
    state = client.get(f"/api/sessions/{sid}").json()
    assert {p["name"]: p["value"] for p in state["parameters"]}["b3"] == b3
    client.post(f"/api/sessions/{sid}/values", json={"set": {"parameters.b3": 0.5}})
    state = client.get(f"/api/sessions/{sid}").json()
    assert {p["name"]: p["value"] for p in state["parameters"]}["b3"] == 0.5
    assert state["settings"]["learning_rate"] == 0.2


def test_an_uploaded_scenario_takes_a_set_too(client):
    sid = open_session(client, toml=SEED_TOML, set={"train.learning_rate": 0.5})
    state = client.get(f"/api/sessions/{sid}").json()
    assert state["settings"]["learning_rate"] == 0.5
    text = SEED_TOML.replace(
        "dosage = [0.0, 0.5, 1.0]\nobserved = [0.0, 1.0, 0.0]", 'csv = "doses.csv"'
    )
    sid = open_session(client, toml=text, files={"doses.csv": "dosage,observed\n0,0\n1,1\n"})
    for path in ("/etc/passwd", "../doses.csv"):
        bad = client.post(f"/api/sessions/{sid}/values", json={"set": {"data.csv": path}})
        assert_refused(bad, 400, "was not uploaded", "reads no file of the server")


def test_the_curve_and_the_chain_rule_follow_the_values(client):
    sid = open_session(client)
    query = f"/api/sessions/{sid}/scan?parameter=b3&from=0&to=4&num=9"
    first = client.get(query).json()
    rule = client.get(f"/api/sessions/{sid}/explain?parameter=b3").json()
    client.post(f"/api/sessions/{sid}/values", json={"values": {"w3": 0.0}})
    moved = client.get(query).json()
    assert moved["losses"][0] != first["losses"][0]
    assert client.get(f"/api/sessions/{sid}/explain?parameter=b3").json() != rule
    client.post(f"/api/sessions/{sid}/values", json={"set": {"train.loss": "mse"}})
    assert client.get(query).json()["losses"][0] == pytest.approx(moved["losses"][0] / 3)
    client.post(f"/api/sessions/{sid}/reset")
    client.post(f"/api/sessions/{sid}/values", json={"set": {"train.loss": "ssr"}})
    assert client.get(query).json() == first
    assert client.get(f"/api/sessions/{sid}/explain?parameter=b3").json() == rule


def test_learning_rate_setting(client):
    sid = open_session(client, scenario="main-ideas", set={"train.learning_rate": 0.3})
    step = client.post(f"/api/sessions/{sid}/step").json()["steps"][0]
    assert step["step_sizes"]["b3"] == pytest.approx(0.3 * FIRST_SLOPE)
    client.post(f"/api/sessions/{sid}/values", json={"set": {"train.learning_rate": 0.01}})
    step = client.post(f"/api/sessions/{sid}/step").json()["steps"][0]
    assert step["step_sizes"]["b3"] == pytest.approx(0.01 * step["gradients"]["b3"])


def test_explain_and_scan_are_the_clis(client, capsys):
    from chainrule.cli import main

    sid = open_session(client)
    explained = client.get(f"/api/sessions/{sid}/explain?parameter=b3").json()
    assert explained["gradient"] == pytest.approx(FIRST_SLOPE)
    main(["explain", "main-ideas", "--param", "b3", "--format", "json"])
    assert explained == json.loads(capsys.readouterr().out)
    scanned = client.get(f"/api/sessions/{sid}/scan?parameter=b3&from=0&to=4&num=9").json()
    assert scanned["losses"][:8] == pytest.approx(SCAN_B3, abs=1e-6)
    main(["scan", "main-ideas", "--param", "b3", "--from", "0", "--to", "4", "--format", "json"])
    assert scanned == json.loads(capsys.readouterr().out)
    grid = client.get(
        f"/api/sessions/{sid}/scan?parameter=w3&from=-2&to=0&num=3"
        "&parameter2=b3&from2=0&to2=4&num2=5"
    ).json()
    assert len(grid["losses"]) == 3 and len(grid["losses"][0]) == 5
    main(
        ["scan", "main-ideas", "--param", "w3", "--from", "-2", "--to", "0", "--num", "3"]
        + ["--param2", "b3", "--from2", "0", "--to2", "4", "--num2", "5", "--format", "json"]
    )
    assert grid == json.loads(capsys.readouterr().out)  # the page's contour is the CLI's grid


def test_backward_walks_from_the_loss_to_the_parameters(client):
    sid = open_session(client)
    nodes = client.get(f"/api/sessions/{sid}/backward").json()["nodes"]
    names = [n["name"] for n in nodes]
    assert names[0] == "SSR" and nodes[0]["gradients"] == [1.0]
    # a node comes before every node it was computed from
    assert names.index("predicted") < names.index("y1") < names.index("x1") < names.index("w1")
    assert {n["name"] for n in nodes if n["kind"] == "parameter"} == {
        "w1", "b1", "w2", "b2", "w3", "w4", "b3"
    }  # fmt: skip
    by_name = {n["name"]: n for n in nodes}
    assert by_name["b3"]["gradients"] == [pytest.approx(FIRST_SLOPE)]
    assert by_name["b3"]["trained"] and not by_name["w1"]["trained"]
    # dSSR/dpredicted = -2 (observed - predicted) at b3 = 0: the green predictions
    green = [-2.6036652381, -1.6090193182, -2.6148696340]
    observed = [0.0, 1.0, 0.0]
    expected = [-2 * (o - g) for o, g in zip(observed, green, strict=True)]
    assert by_name["predicted"]["gradients"] == pytest.approx(expected)


def test_the_quiz_shows_the_points_and_offers_the_forward_pass(client):
    sid = open_session(client)
    data = client.get(f"/api/sessions/{sid}/quiz").json()
    assert data["kind"] == "step"
    assert data["questions"][0]["prompt"] == "What is the slope dSSR/db3 at b3 = 0.0000?"
    points = data["points"]
    assert points["columns"] == ["dosage", "observed", "predicted", "residual"]
    predicted = [row[2] for row in points["rows"]]
    assert predicted == pytest.approx([-2.6036652381, -1.6090193182, -2.6148696340], abs=1e-9)
    assert -2 * sum(row[3] for row in points["rows"]) == pytest.approx(-15.6551083806)
    assert points["whole"] == [False] * 4  # the seed's observed 0.0, 1.0, 0.0 are measures
    slip = client.post(f"/api/sessions/{sid}/quiz", json={"index": 0, "answer": "-7.83"}).json()
    assert slip == {
        "correct": False,
        "message": "You left out the factor 2 of the squared residual's slope: dSSR/db3 is "
        "-15.6551.",
    }
    forward = client.get(f"/api/sessions/{sid}/quiz", params={"kind": "forward"}).json()
    assert [q["parameter"] for q in forward["questions"]] == ["x1", "y1", "x2", "y2", "predicted"]
    assert "points" not in forward
    body = {"index": 4, "answer": "-1.609", "kind": "forward"}
    assert client.post(f"/api/sessions/{sid}/quiz", json=body).json()["correct"] is True
    wrong = client.get(f"/api/sessions/{sid}/quiz", params={"kind": "backward"})
    assert wrong.status_code == 400
    assert "kind: choose step or forward, got 'backward'" in wrong.json()["error"]


def test_the_quiz_marks_a_class_column_as_whole_numbers(client):
    # circles' label is a class, 0 or 1: the page writes it "1", not "1.0000"
    sid = open_session(client, scenario="circles")
    points = client.get(f"/api/sessions/{sid}/quiz").json()["points"]
    assert points["columns"] == ["x1", "x2", "label", "predicted"]
    assert points["whole"] == [False, False, True, False]
    assert {row[2] for row in points["rows"]} <= {0, 1}


def test_quiz_checks_with_the_engines_numbers(client):
    sid = open_session(client)
    questions = client.get(f"/api/sessions/{sid}/quiz").json()["questions"]
    assert [q["kind"] for q in questions] == ["slope", "step size", "new value"]
    assert "answer" not in questions[0]
    right = client.post(f"/api/sessions/{sid}/quiz", json={"index": 0, "answer": "-15.66"})
    assert right.json()["correct"] is True
    wrong = client.post(f"/api/sessions/{sid}/quiz", json={"index": 2, "answer": "1.7"}).json()
    assert wrong["correct"] is False and "1.5655" in wrong["message"]
    # the quiz does not move the session
    assert client.post(f"/api/sessions/{sid}/step").json()["steps"][0]["step"] == 1


def test_state_draws_the_network_and_the_fit(client):
    sid = open_session(client)
    state = client.get(f"/api/sessions/{sid}").json()
    edges = {(e["source"], e["target"], e["parameter"]) for e in state["network"]["edges"]}
    assert ("dosage", "y1", "w1") in edges and ("y2", "predicted", "w4") in edges
    assert state["network"]["layers"] is False  # a formula: its edges say "w1 = 3.34"
    fit = state["fit"]
    assert fit["kind"] == "curve" and fit["x"] == [0.0, 0.5, 1.0]
    assert len(fit["grid"]) == len(fit["curve"])
    i = fit["grid"].index(min(fit["grid"], key=abs))  # the curve at dosage 0, b3 = 0
    assert fit["curve"][i] == pytest.approx(-2.6036652381, abs=0.05)
    assert "terms" not in fit  # only for a page that shows them
    terms = client.get(f"/api/sessions/{sid}?terms=1").json()["fit"]["terms"]
    assert [t["label"] for t in terms][-1] == "b3"


def test_a_step_answers_what_the_page_redraws(client):
    sid = open_session(client)
    plain = client.post(f"/api/sessions/{sid}/step").json()
    assert "fit" not in plain
    assert {p["name"]: p["value"] for p in plain["parameters"]}["b3"] == pytest.approx(FIRST_NEW_B3)
    both = client.post(f"/api/sessions/{sid}/step", json={"fit": True, "terms": True}).json()
    b3 = {p["name"]: p["value"] for p in both["parameters"]}["b3"]
    assert b3 == both["steps"][0]["new_values"]["b3"]
    fit = both["fit"]
    i = fit["grid"].index(min(fit["grid"], key=abs))  # the curve moved up by b3
    assert fit["curve"][i] == pytest.approx(-2.6036652381 + b3, abs=0.05)
    assert fit["terms"][-1]["values"][i] == pytest.approx(b3)
    bad = client.post(f"/api/sessions/{sid}/step", json={"fit": "yes"})
    assert_refused(bad, 400, "fit")


def test_moons_has_decision_regions_and_units(client):
    sid = open_session(client, scenario="moons")
    fit = client.get(f"/api/sessions/{sid}").json()["fit"]
    assert fit["kind"] == "regions" and fit["classes"] == 2
    assert len(fit["p"]) == len(fit["gy"]) and len(fit["p"][0]) == len(fit["gx"])
    assert fit["units"] and len(fit["units"][0]["values"]) == 24
    before = fit["p"]
    client.post(f"/api/sessions/{sid}/step", json={"steps": 50})
    after = client.get(f"/api/sessions/{sid}").json()["fit"]["p"]
    assert after != before


def test_downloads(client):
    sid = open_session(client)
    toml = client.get(f"/api/sessions/{sid}/scenario.toml")
    assert toml.status_code == 200 and 'title = "Backpropagation main ideas' in toml.text
    pytest.importorskip("safetensors")
    client.post(f"/api/sessions/{sid}/step", json={"steps": 20})
    model = client.get(f"/api/sessions/{sid}/model.safetensors")
    assert model.status_code == 200
    import tempfile
    from pathlib import Path

    from chainrule.io import load

    path = Path(tempfile.mkdtemp()) / "m.safetensors"
    path.write_bytes(model.content)
    assert load(path).scalar("b3").value == pytest.approx(B3_AFTER_10)


def test_scenario_text_and_csv_upload(client):
    sid = open_session(client, toml=SEED_TOML)
    step = client.post(f"/api/sessions/{sid}/step").json()["steps"][0]
    assert sorted(step["gradients"]) == ["b", "w"]
    csv = "dosage,observed\n0,0\n0.5,1\n1,0\n"
    text = SEED_TOML.replace(
        "dosage = [0.0, 0.5, 1.0]\nobserved = [0.0, 1.0, 0.0]", 'csv = "doses.csv"'
    )
    sid = open_session(client, toml=text, files={"doses.csv": csv})
    state = client.get(f"/api/sessions/{sid}").json()
    assert state["fit"]["x"] == [0.0, 0.5, 1.0]


def test_page_and_openapi(client):
    page = client.get("/")
    assert page.status_code == 200 and "<caption>Ledger</caption>" in page.text
    schema = client.get("/api/openapi.json").json()
    assert "/api/sessions/{session}/step" in schema["paths"]
    assert "post" in schema["paths"]["/api/sessions/{session}/step"]


# -- refusals: one line, a 4xx ------------------------------------------------------------


def test_bad_json_and_wrong_shapes(client):
    sid = open_session(client)
    assert_refused(client.post("/api/sessions", content=b"{nope"), 400, "not valid JSON")
    assert_refused(client.post("/api/sessions", json=[1]), 400, "JSON object")
    assert_refused(client.post(f"/api/sessions/{sid}/step", json={"steps": "x"}), 400, "steps")
    assert_refused(client.post(f"/api/sessions/{sid}/step", json={"steps": 10**6}), 413, "1000")
    assert_refused(
        client.post(f"/api/sessions/{sid}/values", json={"values": {"b3": "a"}}), 400, "b3"
    )
    assert_refused(
        client.post(f"/api/sessions/{sid}/values", json={"set": {"train.learning_rate": -1}}),
        400,
        "learning_rate",
    )


def test_unknown_scenario_parameter_and_session(client):
    assert_refused(client.post("/api/sessions", json={"scenario": "main-idea"}), 404, "main-ideas")
    sid = open_session(client)
    assert_refused(client.get(f"/api/sessions/{sid}/explain?parameter=b4"), 400, "b4", "b3")
    assert_refused(client.get(f"/api/sessions/{sid}/explain"), 400, "parameter")
    assert_refused(client.post(f"/api/sessions/{sid}/values", json={"freeze": ["w9"]}), 400, "w9")
    assert_refused(client.post("/api/sessions/nope/step"), 404, "no session")
    assert_refused(client.get("/api/nothing"), 404, "/api/nothing")
    assert_refused(client.get(f"/api/sessions/{sid}/step"), 405, "GET")


def test_scan_bounds(client):
    sid = open_session(client)
    base = f"/api/sessions/{sid}/scan?parameter=b3&from=0&to=4"
    assert_refused(client.get(base + "&num=100000"), 413, "at most")
    assert_refused(client.get(base + "&num=1"), 400, "at least 2")
    assert_refused(client.get(f"/api/sessions/{sid}/scan?parameter=b3&from=a&to=1"), 400, "from")


def test_scenario_errors_name_their_line(client):
    typo = SEED_TOML.replace("learning_rate = 0.1", "learning_rat = 0.1")
    response = client.post("/api/sessions", json={"toml": typo})
    message = assert_refused(response, 400, "scenario.toml:11", "learning_rat", "learning_rate")
    assert response.json()["line"] == 11
    assert message.startswith("scenario.toml:11: [train] learning_rat")
    broken = client.post("/api/sessions", json={"toml": "title = \n"})
    assert_refused(broken, 400, "not valid TOML")
    assert broken.json()["line"] == 1


def test_an_upload_may_not_read_server_files(client):
    for path in ("/etc/passwd", "../secret.csv", "data.csv"):
        text = SEED_TOML.replace(
            "dosage = [0.0, 0.5, 1.0]\nobserved = [0.0, 1.0, 0.0]", f'csv = "{path}"'
        )
        response = client.post("/api/sessions", json={"toml": text})
        assert_refused(response, 400, "was not uploaded", "reads no file of the server")
        assert response.json()["line"] == 3
    response = client.post(
        "/api/sessions", json={"toml": SEED_TOML, "files": {"../x.csv": "a,b\n1,2\n"}}
    )
    assert_refused(response, 400, "plain file name")


def test_oversize_upload(client):
    big = SEED_TOML + "# " + "x" * MAX_UPLOAD_BYTES + "\n"
    assert_refused(client.post("/api/sessions", json={"toml": big}), 413, "at most")


def test_sessions_are_bounded_and_expire():
    store = Sessions(limit=2, idle=60)
    client = TestClient(create_app(sessions=store))
    first = open_session(client)
    open_session(client)
    assert_refused(client.post("/api/sessions", json={"scenario": "main-ideas"}), 429, "too many")
    store.get(first).touched -= 61  # idle for longer than the limit
    assert_refused(client.post(f"/api/sessions/{first}/step"), 404, "expired")
    open_session(client)  # the expired one made room
    assert len(store) == 2


def test_tabs_do_not_interfere(client):
    a, b = open_session(client), open_session(client)
    client.post(f"/api/sessions/{a}/step", json={"steps": 5})
    step_b = client.post(f"/api/sessions/{b}/step").json()["steps"][0]
    assert step_b["step"] == 1 and step_b["gradients"]["b3"] == pytest.approx(FIRST_SLOPE)
    assert client.post(f"/api/sessions/{a}/step").json()["steps"][0]["step"] == 6


def test_session_without_a_server():
    from chainrule.scenario import load_scenario

    session = Session.from_scenario(load_scenario("three-parameters"))
    step = session.step(1)["steps"][0]
    assert step["gradients"] == pytest.approx({"w3": 2.576140, "w4": 1.256762, "b3": 1.899555})


def test_import_chainrule_stays_light():
    code = (
        "import sys, chainrule; "
        "heavy = [m for m in ('starlette', 'uvicorn', 'chainrule.web.app') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "rate, steps, words",
    [
        (2.0, 50, ["try Learning rate 0.2", "in one step (Learning rate 0.1667)"]),  # diverges
        (0.001, 20, ["in one step (Learning rate 0.1667)"]),  # crawls
    ],
)
def test_the_pages_remedies_name_its_own_controls(client, rate, steps, words):
    # the page has a Learning rate box and a Max steps box: a remedy names those, not
    # the API's keywords (learning_rate=0.2) or the command line's (--set ...)
    from chainrule.explain.outcome import setting

    assert setting("max_steps", "40", "page") == "Max steps 40"
    settings = {"train.learning_rate": rate, "train.stop.max_steps": steps}
    sid = open_session(client, scenario="main-ideas", set=settings)
    body = client.post(f"/api/sessions/{sid}/step", json={"steps": 100}).json()
    assert body["done"]
    said = body["message"] + " " + body["diagnosis"]["message"]
    for w in words:
        assert w in said, said
    for code in ("learning_rate=", "--set", "max_steps="):
        assert code not in said, said
    run = client.get(f"/api/sessions/{sid}").json()["run"]  # the page's state, reloaded
    assert run["message"] == body["message"]
    assert run["diagnosis"]["message"] == body["diagnosis"]["message"]


def test_a_scenario_that_compiles_steps_on_the_page_as_an_eager_one():
    from chainrule.scenario import load_scenario

    compiled = Session.from_scenario(load_scenario("iris", overrides={"train.compile": True}))
    eager = Session.from_scenario(load_scenario("iris"))
    fast, slow = compiled.step(5)["steps"], eager.step(5)["steps"]
    assert [s["loss"] for s in fast] == pytest.approx([s["loss"] for s in slow], rel=0, abs=1e-12)
    assert fast[-1]["new_values"] == pytest.approx(slow[-1]["new_values"], rel=0, abs=1e-12)
    assert compiled.explain("hidden.weight[0,1]")["gradient"] == pytest.approx(
        eager.explain("hidden.weight[0,1]")["gradient"], rel=0, abs=1e-12
    )


@pytest.mark.parametrize(
    ("scenario", "selected", "second"),
    [
        ("main-ideas", "b3", None),
        ("iris", "hidden.weight[0,1]", "hidden.weight[1,1]"),
        ("all-parameters", "w1", "b1"),
    ],
)
def test_a_session_opens_on_the_first_trained_parameters_with_a_slope(
    client, scenario, selected, second
):
    # iris's hidden unit 0 is off for every flower at the start: its weights get no
    # slope, so the page opens on the first weight that has one, and its contour takes
    # the next one (not hidden.weight[1,0], whose slope is 0 too)
    opened = client.post("/api/sessions", json={"scenario": scenario}).json()
    assert (opened["selected"], opened["second"]) == (selected, second)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")  # (w3 = 1e308, on purpose)
def test_a_session_that_trains_nothing_opens_on_no_parameter():
    from chainrule.scenario import load_scenario

    session = Session.from_scenario(load_scenario("main-ideas"))
    session.set_values(freeze=["b3"])
    assert session.with_a_slope() == []
    # and a model at a loss that is not a number has no next step: the first trained
    session = Session.from_scenario(load_scenario("three-parameters"))
    session.set_values(values={"w3": 1e308, "w4": 1e308})
    assert session.with_a_slope() == ["w3", "w4"]
