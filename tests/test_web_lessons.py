"""The lessons in the playground's side panel, through Starlette's test client: the path in
order, a lesson's blocks as its handout renders them, checkpoints answered with the
terminal player's feedback (the answer never sent before), and every refusal as a 4xx
with one line."""

from __future__ import annotations

import json
from html import escape

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx2")

from starlette.testclient import TestClient  # noqa: E402

from chainrule.lesson import builtin_lessons, load_lesson, perform_all  # noqa: E402
from chainrule.lesson.render import block_html  # noqa: E402
from chainrule.web.app import create_app  # noqa: E402
from chainrule.web.lessons import MAX_ANSWER_CHARS, LessonShelf  # noqa: E402

# The seed's first step (StatQuest, Backpropagation Main Ideas): b3 from 0, learning rate
# 0.1: slope -15.6551083806, step size -1.5655108381, new b3 1.5655108381.
FIRST_SLOPE = "-15.6551"
FIRST_STEP_SIZE_2 = "-1.57"
FIRST_NEW_B3 = "1.5655"


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app())


def assert_refused(response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    message = body["error"]
    assert message and "\n" not in message
    for word in words:
        assert word in message, message
    return message


def check(client: TestClient, name: str, number: int | str, answer: object):
    return client.post(f"/api/lessons/{name}/checkpoints/{number}", json={"answer": answer})


def test_lessons_list_the_path_in_order(client):
    lessons = client.get("/api/lessons").json()["lessons"]
    assert [item["name"] for item in lessons] == [info.name for info in builtin_lessons()]
    assert [item["position"] for item in lessons] == list(range(1, 10))
    assert lessons[0]["title"] == "Inside the black box"
    assert lessons[1]["summary"].startswith("Backpropagation in its smallest form")


def test_a_lesson_is_its_handouts_blocks(client):
    pytest.importorskip("matplotlib")
    pytest.importorskip("markdown_it")
    page = client.get("/api/lessons/main-ideas").json()
    lesson = load_lesson("main-ideas")
    assert page["title"] == lesson.title and page["position"] == 2 and page["checkpoints"] == 2
    blocks = page["blocks"]
    assert [(b["number"], b["kind"]) for b in blocks] == [(b.number, b.kind) for b in lesson.blocks]
    # the handout's own renderer, block by block (exercises numbered among checkpoints)
    exercise = 0
    for block, done in zip(blocks, perform_all(lesson), strict=True):
        exercise += block["kind"] == "checkpoint"
        expected = block_html(done, exercise if block["kind"] == "checkpoint" else None)
        assert block["html"] == expected
    html = "\n".join(b["html"] for b in blocks)
    assert f"<h1>{lesson.title}</h1>" in html
    assert "$ chainrule explain main-ideas --param b3" in html
    assert f"gradient: {FIRST_SLOPE}" in html  # the command's live output
    assert html.count('src="data:image/png;base64,') == 1  # the loss-curve figure, inline
    assert "{{" not in html and "Answers" not in html
    # blocks that read a built-in scenario name it, so the page can open it
    assert {b.get("scenario") for b in blocks if b["kind"] in ("command", "figure")} == {
        "main-ideas"
    }


@pytest.mark.parametrize("name", [info.name for info in builtin_lessons()])
def test_a_checkpoints_answer_is_not_sent_before_it_is_answered(client, name):
    page = client.get(f"/api/lessons/{name}").json()
    checkpoints = [b for b in page["blocks"] if b["kind"] == "checkpoint"]
    assert [b["checkpoint"] for b in checkpoints] == list(range(1, page["checkpoints"] + 1))
    assert checkpoints
    for block in checkpoints:
        assert set(block) <= {"number", "kind", "checkpoint", "question", "html", "scenario"}
        assert "{{" not in block["question"] and escape(block["question"]) in block["html"]
    assert '"answer' not in json.dumps(page)


def test_a_checkpoint_wrong_then_right_gives_the_players_feedback(client):
    page = client.get("/api/lessons/main-ideas").json()
    question = [b for b in page["blocks"] if b["kind"] == "checkpoint"][1]["question"]
    assert question == f"b3 = 0 and the step size is {FIRST_STEP_SIZE_2}. What is the new b3?"
    wrong = check(client, "main-ideas", 2, "3").json()
    assert wrong["correct"] is False
    assert wrong["message"].startswith(f"Not quite: the new b3 is {FIRST_NEW_B3}, not 3.")
    right = check(client, "main-ideas", 2, "1.57").json()
    assert right == {
        "checkpoint": 2,
        "correct": True,
        "message": f"Right: the new b3 is {FIRST_NEW_B3}.",
    }
    first = check(client, "main-ideas", 1, -15.66).json()  # a JSON number is read too
    assert first["correct"] and first["message"] == f"Right: dSSR/db3 at b3 = 0 is {FIRST_SLOPE}."
    assert check(client, "main-ideas", 1, "a lot").json() == {
        "checkpoint": 1,
        "correct": False,
        "message": "Please type a number, e.g. 1.5.",
    }
    # an empty answer shows the answer, as Enter does in the terminal
    assert check(client, "main-ideas", 2, "").json()["message"] == "The answer is 1.57."


def test_refusals_are_4xx_with_one_line(client, tmp_path, monkeypatch):
    assert_refused(client.get("/api/lessons/main-idea"), 404, "did you mean 'main-ideas'")
    # a lesson file on the server is never read through the API: built-in names only
    (tmp_path / "mine.md").write_text("# Mine\n\nWords.\n")
    monkeypatch.chdir(tmp_path)
    assert_refused(client.get("/api/lessons/mine.md"), 404, "unknown lesson 'mine.md'")
    assert_refused(check(client, "main-ideas", 3, "1"), 404, "checkpoints 1 to 2, not 3")
    assert_refused(check(client, "main-ideas", 0, "1"), 404, "checkpoints 1 to 2, not 0")
    assert_refused(check(client, "main-ideas", "first", "1"), 404, "checkpoint 'first'")
    assert_refused(check(client, "no-such", 1, "1"), 404, "unknown lesson 'no-such'")
    url = "/api/lessons/main-ideas/checkpoints/1"
    assert_refused(client.post(url, content=b"{nope"), 400, "not valid JSON")
    assert_refused(client.post(url, json=[1]), 400, "must be a JSON object")
    assert_refused(client.post(url, json={}), 400, '{"answer": ')
    assert_refused(client.post(url, json={"answer": True}), 400, '{"answer": ')
    too_long = "1" * (MAX_ANSWER_CHARS + 1)
    assert_refused(client.post(url, json={"answer": too_long}), 413, "at most")
    assert_refused(client.get(url), 405, "GET is not allowed")


def test_each_lesson_is_performed_once():
    shelf = LessonShelf()
    first = shelf.performed("cross-entropy")
    assert shelf.performed("cross-entropy") is first
    assert shelf.page("cross-entropy") == shelf.page("cross-entropy")


def test_the_schema_lists_the_lesson_routes(client):
    paths = client.get("/api/openapi.json").json()["paths"]
    assert set(paths["/api/lessons/{name}/checkpoints/{number}"]) == {"post"}
    assert "get" in paths["/api/lessons"] and "get" in paths["/api/lessons/{name}"]
    index = client.get("/").text
    assert 'src="/static/lessons.js"' in index and 'aria-controls="lessons-panel"' in index
    assert "checkpoints/" in client.get("/static/lessons.js").text
