"""The playground's server: a Starlette app with the page and its JSON API.

Each route reads a request, asks a :class:`~chainrule.web.session.Session`, and answers
with JSON; every refusal is a 4xx with ``{"error": "one line"}``. The API is documented
in ``docs/web.md``; ``GET /api/openapi.json`` gives its schema.

>>> from starlette.testclient import TestClient
>>> client = TestClient(create_app())
>>> session = client.post("/api/sessions", json={"scenario": "main-ideas"}).json()["session"]
>>> step = client.post(f"/api/sessions/{session}/step").json()["steps"][0]
>>> round(step["gradients"]["b3"], 4)
-15.6551
"""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from chainrule.errors import ChainruleError
from chainrule.scenario import builtin_scenarios, load_scenario
from chainrule.text import did_you_mean
from chainrule.version import __version__
from chainrule.web.lessons import LessonShelf, lesson_routes
from chainrule.web.session import (
    MAX_UPLOAD_BYTES,
    Session,
    SessionError,
    Sessions,
    error_line,
    scenario_from_upload,
)

#: The largest request body read (an upload's text and CSV files, as JSON).
MAX_BODY_BYTES = MAX_UPLOAD_BYTES + 64 * 1024


def static_dir() -> str:
    """The folder of the page's assets (HTML, CSS, JavaScript), shipped in the package."""
    return str(resources.files("chainrule.web") / "static")


def _error(message: str, status: int = 400, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split()), **extra}, status_code=status)


class _Json(JSONResponse):
    """JSON that writes an infinite or missing number as null (strict JSON has no NaN)."""

    def render(self, content: Any) -> bytes:
        try:  # the sessions' answers are plain already: walk them again only if needed
            return json.dumps(content, allow_nan=False, separators=(",", ":")).encode()
        except ValueError:
            return json.dumps(_finite(content), allow_nan=False, separators=(",", ":")).encode()


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


async def _body(request: Request) -> dict[str, Any]:
    """The request's JSON object (an empty body is ``{}``); a clear 4xx otherwise."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise SessionError(
            f"the request is {int(declared):,} bytes; at most {MAX_BODY_BYTES:,}", 413
        )
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise SessionError(f"the request is larger than {MAX_BODY_BYTES:,} bytes", 413)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SessionError(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise SessionError(f"the request body must be a JSON object, not {type(body).__name__}")
    return body


def create_app(default: str = "main-ideas", sessions: Sessions | None = None) -> Starlette:
    """The playground's app: the page at ``/`` (opening scenario ``default``) and the API.

    ``sessions`` holds the open sessions (a fresh bounded store by default).
    """
    store = sessions if sessions is not None else Sessions()
    load_scenario(default)  # a bad name fails here, before the server starts

    def session_of(request: Request) -> Session:
        return store.get(request.path_params["session"])

    async def index(request: Request) -> Response:
        return FileResponse(f"{static_dir()}/index.html", media_type="text/html")

    async def scenarios(request: Request) -> Response:
        """The built-in scenarios."""
        infos = [
            {"name": i.name, "title": i.title, "description": i.description}
            for i in builtin_scenarios()
        ]
        return _Json({"scenarios": infos, "default": default})

    async def create(request: Request) -> Response:
        """Open a session on a built-in scenario or on scenario text."""
        body = await _body(request)
        if "toml" in body:
            text, files = body["toml"], body.get("files") or {}
            if not isinstance(text, str):
                raise SessionError("toml: expected the scenario's text as a string")
            if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
                raise SessionError('files: expected {"name.csv": "the CSV text"}')
            session = Session.from_scenario(scenario_from_upload(text, files), text, files)
        else:
            name = body.get("scenario", default)
            if not isinstance(name, str) or name not in {i.name for i in builtin_scenarios()}:
                names = [i.name for i in builtin_scenarios()]
                raise SessionError(
                    f"unknown scenario {name!r}{did_you_mean(str(name), names)} "
                    f"(built-in: {', '.join(names)})",
                    404,
                )
            session = Session.from_scenario(load_scenario(name))
        settings = body.get("set") or {}
        if not isinstance(settings, dict):
            raise SessionError('set: expected {"train.learning_rate": 0.3, ...}')
        session.configure(settings)
        key = store.add(session)
        first, second = (*session.with_a_slope(2), None, None)[:2]
        body = {"session": key, **session.state(), "selected": first, "second": second}
        return _Json(body, status_code=201)

    async def state(request: Request) -> Response:
        """The session as the page draws it (parameters, network, fit, run so far)."""
        session = session_of(request)
        brief, terms = _flag(request, "brief"), _flag(request, "terms")
        with session.lock:
            return _Json(session.state(brief=brief, terms=terms))

    async def step(request: Request) -> Response:
        """Take steps of gradient descent."""
        body = await _body(request)
        session = session_of(request)
        fit, terms = body.get("fit", False), body.get("terms", False)
        if not isinstance(fit, bool) or not isinstance(terms, bool):
            raise SessionError("fit, terms: expected true or false")
        with session.lock:
            return _Json(session.step(body.get("steps", 1), fit=fit, terms=terms))

    async def reset(request: Request) -> Response:
        """Back to the scenario's starting values."""
        session = session_of(request)
        with session.lock:
            session.reset()
            return _Json(session.state())

    async def values(request: Request) -> Response:
        """Set values, freeze or train parameters, change the settings."""
        body = await _body(request)
        session = session_of(request)
        with session.lock:
            for key in ("freeze", "train"):
                if key in body and not isinstance(body[key], list):
                    raise SessionError(f"{key}: expected a list of parameter names")
            if "values" in body and not isinstance(body["values"], dict):
                raise SessionError('values: expected {"name": number}')
            session.set_values(body.get("values"), body.get("freeze"), body.get("train"))
            if body.get("set"):
                if not isinstance(body["set"], dict):
                    raise SessionError('set: expected {"train.learning_rate": 0.3, ...}')
                session.configure(body["set"])
            return _Json(session.state())

    async def explain(request: Request) -> Response:
        """The chain rule for one parameter (chainrule explain --format json)."""
        session = session_of(request)
        parameter = _query(request, "parameter")
        with session.lock:
            return _Json(session.explain(parameter))

    async def scan(request: Request) -> Response:
        """The loss over a grid (chainrule scan --format json)."""
        session = session_of(request)
        q = request.query_params
        args: dict[str, Any] = {
            "parameter": _query(request, "parameter"),
            "start": _number(q, "from", required=True),
            "stop": _number(q, "to", required=True),
            "num": _whole(q, "num", 9),
        }
        if "parameter2" in q:
            args.update(
                parameter2=q["parameter2"],
                start2=_number(q, "from2", required=True),
                stop2=_number(q, "to2", required=True),
                num2=_whole(q, "num2", 9),
            )
        with session.lock:
            return _Json(session.scan(**args))

    async def backward(request: Request) -> Response:
        """The backward pass, node by node from the loss back to the parameters."""
        session = session_of(request)
        with session.lock:
            return _Json(session.backward())

    async def quiz(request: Request) -> Response:
        """Questions about the next step (``?kind=forward``: the forward pass); POST
        {"index", "answer", "kind"} checks one."""
        session = session_of(request)
        if request.method == "POST":
            body = await _body(request)
            kind = body.get("kind", "step")
            with session.lock:
                return _Json(session.check(body.get("index"), body.get("answer", ""), kind))
        with session.lock:
            return _Json(session.quiz(request.query_params.get("kind", "step")))

    async def model_file(request: Request) -> Response:
        """The model at its values now, as a safetensors file."""
        session = session_of(request)
        with session.lock:
            payload = session.safetensors()
        name = (session.scenario.name or "model").replace('"', "")
        return Response(
            payload,
            media_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{name}.safetensors"'},
        )

    async def scenario_file(request: Request) -> Response:
        """The session's scenario text, as a TOML file."""
        session = session_of(request)
        name = (session.scenario.name or "scenario").replace('"', "")
        return Response(
            session.source,
            media_type="application/toml",
            headers={"Content-Disposition": f'attachment; filename="{name}.toml"'},
        )

    routes = [
        Route("/", index),
        Route("/api/scenarios", scenarios),
        Route("/api/sessions", create, methods=["POST"]),
        Route("/api/sessions/{session}", state),
        Route("/api/sessions/{session}/step", step, methods=["POST"]),
        Route("/api/sessions/{session}/reset", reset, methods=["POST"]),
        Route("/api/sessions/{session}/values", values, methods=["POST"]),
        Route("/api/sessions/{session}/explain", explain),
        Route("/api/sessions/{session}/scan", scan),
        Route("/api/sessions/{session}/backward", backward),
        Route("/api/sessions/{session}/quiz", quiz, methods=["GET", "POST"]),
        Route("/api/sessions/{session}/model.safetensors", model_file),
        Route("/api/sessions/{session}/scenario.toml", scenario_file),
    ]
    routes += lesson_routes(LessonShelf(), _body)
    schema = openapi_schema(routes)

    async def openapi(request: Request) -> Response:
        return _Json(schema)

    routes += [
        Route("/api/openapi.json", openapi, include_in_schema=False),
        Mount("/static", StaticFiles(directory=static_dir()), name="static"),
    ]

    async def refused(request: Request, exc: Exception) -> Response:
        if isinstance(exc, SessionError):
            line = error_line(str(exc))
            return _error(str(exc), exc.status, **({"line": line} if line else {}))
        if isinstance(exc, ChainruleError):
            line = error_line(str(exc))
            return _error(str(exc), 400, **({"line": line} if line else {}))
        if isinstance(exc, HTTPException):
            return _error(_http_message(request, exc.status_code), exc.status_code)
        raise exc  # pragma: no cover

    return Starlette(
        routes=routes,
        exception_handlers={ChainruleError: refused, HTTPException: refused},
    )


def openapi_schema(routes: list[Route]) -> dict[str, Any]:
    """An OpenAPI 3 description of the API routes: each path, its methods, and the first
    line of its handler's docstring as the summary (``docs/web.md`` has the details)."""
    paths: dict[str, Any] = {}
    for route in routes:
        if not route.path.startswith("/api/"):
            continue
        summary = (route.endpoint.__doc__ or "").strip().splitlines()[0]
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in route.param_convertors
        ]
        paths[route.path] = {
            method.lower(): {
                "summary": summary,
                "parameters": params,
                "responses": {
                    "200": {"description": "JSON"},
                    "4XX": {"description": '{"error": "one line naming the problem"}'},
                },
            }
            for method in sorted(route.methods or ["GET"])
            if method != "HEAD"
        }
    return {
        "openapi": "3.0.3",
        "info": {"title": "chainrule playground", "version": __version__},
        "paths": paths,
    }


def _http_message(request: Request, status: int) -> str:
    if status == 404:
        return f"no such page or API route: {request.url.path}"
    if status == 405:
        return f"{request.method} is not allowed on {request.url.path}"
    return f"HTTP {status} on {request.url.path}"


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name) in ("1", "true")


def _query(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if not value:
        raise SessionError(f"the query needs ?{name}=..., e.g. ?{name}=b3")
    return value


def _number(query: Any, name: str, required: bool = False) -> float:
    text = query.get(name)
    if text is None:
        raise SessionError(f"the query needs {name}=NUMBER")
    try:
        return float(text)
    except ValueError:
        raise SessionError(f"{name}: expected a number, got {text!r}") from None


def _whole(query: Any, name: str, default: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise SessionError(f"{name}: expected a whole number, got {text!r}") from None
