"""The playground: a local web page that runs backpropagation live, on the engine.

``chainrule serve [SCENARIO]`` starts it (:func:`serve`); the page talks to a small JSON
API (:mod:`chainrule.web.app`, documented in ``docs/web.md``) whose answers come from a
:class:`~chainrule.web.session.Session` through the model/Run seam, so the page shows the
same numbers and the same words as the command line. Starlette and uvicorn (the ``[web]``
extra) are imported only when a server is made: ``import chainrule`` stays light.

>>> from chainrule.web.session import Session, load_scenario
>>> Session.from_scenario(load_scenario("main-ideas")).parameters()[-1]
{'name': 'b3', 'value': 0.0, 'trained': True}
"""

from __future__ import annotations

import ipaddress
import sys
import threading
import webbrowser
from typing import TextIO

from chainrule.errors import ChainruleError

#: The address the server listens on unless ``--host`` says otherwise: this machine only.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000

INSTALL_HINT = 'the playground needs the [web] extra: pip install "chainrule[web]"'


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only.

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    scenario: str = "main-ideas",
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    open_browser: bool = False,
    out: TextIO | None = None,
) -> None:
    """Serve the playground on ``host:port`` until Ctrl-C, opening ``scenario`` first.

    Listens on this machine only unless ``host`` says otherwise (then it warns: anyone
    who reaches the address can use the page). Prints the address to open.
    """

    try:
        import uvicorn

        from chainrule.web.app import create_app
    except ImportError:
        raise ChainruleError(INSTALL_HINT) from None
    out = out if out is not None else sys.stderr
    app = create_app(scenario)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    if not is_loopback(host):
        print(
            f"chainrule: warning: serving on {host}: other machines that reach this address "
            "can use the playground (it has no login)",
            file=out,
        )
    print(f"chainrule playground: {url}  (Ctrl-C stops it)", file=out, flush=True)
    if open_browser:
        threading.Timer(0.8, webbrowser.open, args=(url,)).start()
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    try:
        server.run()
    except KeyboardInterrupt:  # pragma: no cover (uvicorn handles SIGINT itself)
        pass
    if not server.started:
        raise ChainruleError(f"could not listen on {host}:{port} (is the port in use?)")
    print("chainrule playground: stopped", file=out)
