"""The lessons in the playground's side panel: the built-in path, each lesson's blocks as
its handout shows them, and its checkpoints answered in the page.

A lesson is performed by the same player as ``chainrule lesson`` (:mod:`chainrule.lesson`)
and each block is rendered by the handout's own HTML renderer
(:func:`chainrule.lesson.render.block_html`), so the page shows the terminal's numbers
and words. A checkpoint's answer stays on the server: the page sends the learner's answer
and gets back the feedback of :func:`chainrule.explain.quiz.check_answer`, as the
terminal player gives it.

Only built-in lessons are served (never a file named in a request), and each is
performed at most once per server, one at a time, then kept: the work a request can
cause is bounded by the nine lessons of the path.

>>> shelf = LessonShelf()
>>> [lesson["name"] for lesson in shelf.catalogue()][:2]
['inside-the-black-box', 'main-ideas']
>>> shelf.check("main-ideas", 1, "-15.66")
{'checkpoint': 1, 'correct': True, 'message': 'Right: dSSR/db3 at b3 = 0 is -15.6551.'}
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chainrule.errors import ChainruleError
from chainrule.explain.quiz import check_answer
from chainrule.lesson import Lesson, LessonInfo, Performed, builtin_lessons, load_lesson
from chainrule.lesson.document import Block, Checkpoint, Command, Figure, parse_command
from chainrule.lesson.player import checkpoint_question, format_value, perform_all
from chainrule.lesson.render import block_html
from chainrule.scenario import builtin_scenarios
from chainrule.text import did_you_mean
from chainrule.web.session import SessionError

__all__ = ["MAX_ANSWER_CHARS", "LessonShelf", "lesson_routes"]

#: The longest answer read at a checkpoint (a number, typed by hand).
MAX_ANSWER_CHARS = 100


class LessonShelf:
    """The built-in lessons, each performed on first request and kept.

    ``catalogue()`` lists the path, ``page(name)`` gives a lesson's blocks (never a
    checkpoint's answer), ``check(name, k, answer)`` checks an answer to its k-th checkpoint.
    """

    def __init__(self) -> None:
        self._infos: dict[str, LessonInfo] = {info.name: info for info in builtin_lessons()}
        self._done: dict[str, tuple[Lesson, list[Performed]]] = {}
        self._lock = threading.Lock()  # one lesson performed at a time (matplotlib, CPU)

    def catalogue(self) -> list[dict[str, Any]]:
        """The path in order: position, name, title and one-line summary of each lesson."""
        return [
            {"position": i.position, "name": i.name, "title": i.title, "summary": i.summary}
            for i in self._infos.values()
        ]

    def performed(self, name: str) -> tuple[Lesson, list[Performed]]:
        """The lesson ``name`` and its performed blocks (performed once, then kept)."""
        if name not in self._infos:
            names = list(self._infos)
            hint = did_you_mean(name, names)
            raise SessionError(f"unknown lesson {name!r}{hint} (built-in: {', '.join(names)})", 404)
        with self._lock:
            if name not in self._done:
                lesson = load_lesson(name)
                self._done[name] = (lesson, perform_all(lesson))
            return self._done[name]

    def page(self, name: str) -> dict[str, Any]:
        """What the panel shows of lesson ``name``: each block's HTML, in order.

        A checkpoint block carries its number among the checkpoints (``checkpoint``) and
        its question, never its answer; a block that reads a built-in scenario names it
        (``scenario``), so the page can open it in the playground.
        """
        lesson, performed = self.performed(name)
        info = self._infos[name]
        scenarios = {s.name for s in builtin_scenarios()}
        blocks, asked = [], 0
        for done in performed:
            block = done.block
            item: dict[str, Any] = {"number": block.number, "kind": block.kind}
            if isinstance(block, Checkpoint):
                asked += 1
                item.update(checkpoint=asked, question=done.text)
            item["html"] = block_html(done, asked if isinstance(block, Checkpoint) else None)
            scenario = _scenario_of(block)
            if scenario in scenarios:
                item["scenario"] = scenario
            blocks.append(item)
        return {
            "position": info.position,
            "name": lesson.name,
            "title": lesson.title,
            "summary": lesson.summary,
            "checkpoints": asked,
            "blocks": blocks,
        }

    def check(self, name: str, checkpoint: int, answer: str) -> dict[str, Any]:
        """Check ``answer`` to the ``checkpoint``-th checkpoint (from 1) of lesson ``name``.

        The feedback is the terminal player's: ``Right: ... is ...`` or ``Not quite: ...``;
        an empty answer shows the answer, as Enter does in the terminal.
        """
        _, performed = self.performed(name)
        asked = [done for done in performed if isinstance(done.block, Checkpoint)]
        if not 1 <= checkpoint <= len(asked):
            raise SessionError(
                f"lesson {name!r} has checkpoints 1 to {len(asked)}, not {checkpoint}", 404
            )
        if len(answer) > MAX_ANSWER_CHARS:
            raise SessionError(f"answer: at most {MAX_ANSWER_CHARS} characters", 413)
        done = asked[checkpoint - 1]
        if not answer.strip():
            assert isinstance(done.block, Checkpoint) and done.answer is not None
            shown = format_value(done.answer, done.block.decimals)
            return {
                "checkpoint": checkpoint,
                "correct": False,
                "message": f"The answer is {shown}.",
            }
        correct, message = check_answer(checkpoint_question(done), answer)
        return {"checkpoint": checkpoint, "correct": correct, "message": message}


def _scenario_of(block: Block) -> str | None:
    """The scenario a command or figure block reads, if it names one."""
    if isinstance(block, Figure):
        return block.scenario
    if isinstance(block, Command):
        try:
            return getattr(parse_command(block.argv), "scenario", None)
        except ChainruleError:  # pragma: no cover (checked when the lesson was read)
            return None
    return None


def lesson_routes(
    shelf: LessonShelf, read_body: Callable[[Request], Awaitable[dict[str, Any]]]
) -> list[Route]:
    """The lesson panel's API routes on ``shelf``; ``read_body`` reads a request's JSON
    object (the app's own reader, with its size limit and its errors).

    A lesson is performed in a worker thread, so a slow first performance does not hold
    up the playground's other requests.
    """

    async def lessons(request: Request) -> Response:
        """The built-in lessons, in the order of the path."""
        return JSONResponse({"lessons": shelf.catalogue()})

    async def lesson(request: Request) -> Response:
        """One lesson's blocks: text, command output, figures and checkpoint questions."""
        return JSONResponse(await run_in_threadpool(shelf.page, request.path_params["name"]))

    async def checkpoint(request: Request) -> Response:
        """Check an answer to a lesson's checkpoint: POST {"answer": "..."}."""
        body = await read_body(request)
        answer = body.get("answer")
        if isinstance(answer, int | float) and not isinstance(answer, bool):
            answer = str(answer)
        if not isinstance(answer, str):
            raise SessionError('answer: expected {"answer": "a number, as text"}')
        name, number = request.path_params["name"], request.path_params["number"]
        if not number.isdigit():
            raise SessionError(f"checkpoint {number!r}: expected a whole number from 1", 404)
        return JSONResponse(await run_in_threadpool(shelf.check, name, int(number), answer))

    return [
        Route("/api/lessons", lessons),
        Route("/api/lessons/{name}", lesson),
        Route("/api/lessons/{name}/checkpoints/{number}", checkpoint, methods=["POST"]),
    ]
