"""The teacher's page: the class's board, live, behind a token of its own.

``labviz app`` (``make app``) starts it beside the students' Voilà app. It is a small threaded
HTTP server of the standard library; no kernel runs behind it. Every request needs the teacher's
token (``?token=...``); the students' token does not open it.

* ``/``: the page. It draws :func:`labviz.figures.class_board.board_figure` with the plotly.js that
  comes with plotly (nothing is fetched from the internet) and asks for it again every
  :data:`POLL_MS`, so points appear as students' runs finish;
* ``/figure.json``: the figure, as plotly JSON;
* ``/runs.csv``: every run on the board, as CSV (:meth:`~labviz.classroom.class_board.ClassBoard.to_csv`);
* ``/plotly.min.js``: plotly.js.
"""

from __future__ import annotations

import hmac
import html
import re
import threading
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import plotly

from labviz.core import _validation as v
from labviz.classroom.class_board import ClassBoard
from labviz.figures.class_board import board_figure

__all__ = ["POLL_MS", "BoardServer"]

#: The page asks for the board this often, in milliseconds.
POLL_MS = 2000
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,}")
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>labviz: the class's board</title>
<script src="plotly.min.js?token={token}"></script>
<style>body {{ font-family: Arial, Helvetica, sans-serif; margin: 16px; color: #222; }}</style>
</head><body>
<h2>The class's board</h2>
<p>Every finished run of every student, as it finishes: α against test ECE, accuracy and NC1,
coloured by loss. <a id="csv" href="runs.csv?token={token}" download="class-runs.csv">Download
the runs (CSV)</a> · <span id="status">loading…</span></p>
<div id="board"></div>
<script>
const token = new URLSearchParams(location.search).get("token");
const status = document.getElementById("status");
let shown = null;
async function refresh() {{
  try {{
    const response = await fetch(`figure.json?token=${{encodeURIComponent(token)}}`,
                                 {{ cache: "no-store" }});
    if (!response.ok) throw new Error(`the server answered ${{response.status}}`);
    const body = await response.text();
    if (body !== shown) {{
      const figure = JSON.parse(body);
      await Plotly.react("board", figure.data, figure.layout);
      shown = body;
    }}
    status.textContent = `up to date at ${{new Date().toLocaleTimeString()}}`;
  }} catch (error) {{
    status.textContent = `cannot reach the server (${{error.message}}); trying again`;
  }}
  setTimeout(refresh, {poll_ms});
}}
refresh();
</script>
</body></html>
"""


class BoardServer:
    """Serve ``board`` to whoever holds ``token``, in a background thread.

    Parameters
    ----------
    board : ClassBoard
    token : str
        The teacher's token: at least 16 letters, digits, "-" or "_".
    host : str, default "127.0.0.1"
        The address to listen on (``labviz app --lan`` gives every interface).
    port : int, default 0
        0 picks a free port (see :attr:`port`).

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, board: ClassBoard, token: str, *, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        if not isinstance(board, ClassBoard):
            raise TypeError(f"`board` must be a ClassBoard; got {type(board).__name__}.")
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            raise ValueError("`token` must be at least 16 letters, digits, '-' or '_' (it goes in "
                             f"URLs as it is); got {_shown(token)}.")
        port = v.check_int(port, "port", minimum=0)
        self.board, self.token = board, token
        handler = type("BoardHandler", (_Handler,), {"server_board": self})
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True,
                                        name="labviz-board-server")
        self._thread.start()

    @property
    def host(self) -> str:
        """The address the server listens on."""
        address = self._httpd.server_address[0]  # str for the IPv4 and IPv6 servers used here
        return address if isinstance(address, str) else bytes(address).decode()

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return self._httpd.server_address[1]

    def url(self, host: str | None = None) -> str:
        """The teacher's URL, token included (``host`` replaces the listening address)."""
        return f"http://{host or self.host}:{self.port}/?token={self.token}"

    def close(self) -> None:
        """Stop serving and free the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> BoardServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"BoardServer(http://{self.host}:{self.port}/, {self.board!r})"


def _shown(token: object) -> str:
    """A refused token, described without showing it."""
    if not isinstance(token, str):
        name = type(token).__name__
        return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"
    return f"a str of {len(token)} characters"


class _Handler(BaseHTTPRequestHandler):
    server_board: BoardServer  # set on the subclass each server makes

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        url = urllib.parse.urlsplit(self.path)
        given = urllib.parse.parse_qs(url.query).get("token", [""])[0]
        owner = self.server_board
        if not hmac.compare_digest(given.encode(), owner.token.encode()):
            self._send(HTTPStatus.FORBIDDEN, b"This page needs the teacher's token.\n",
                       "text/plain; charset=utf-8")
            return
        if url.path == "/":
            page = _PAGE.format(token=html.escape(owner.token), poll_ms=POLL_MS)
            self._send(HTTPStatus.OK, page.encode(), "text/html; charset=utf-8")
        elif url.path == "/figure.json":
            figure = board_figure(owner.board.runs())
            self._send(HTTPStatus.OK, figure.to_json().encode(), "application/json")
        elif url.path == "/runs.csv":
            self._send(HTTPStatus.OK, owner.board.to_csv().encode(), "text/csv; charset=utf-8",
                       extra={"Content-Disposition": 'attachment; filename="class-runs.csv"'})
        elif url.path == "/plotly.min.js":
            self._send(HTTPStatus.OK, PLOTLY_JS.read_bytes(), "text/javascript; charset=utf-8")
        else:
            self._send(HTTPStatus.NOT_FOUND, b"Not found.\n", "text/plain; charset=utf-8")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, *,
              extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Quiet: the page asks every 2 s."""
