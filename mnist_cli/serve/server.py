"""The HTTP side of mnist-serve: Python's ThreadingHTTPServer, held to what a local page needs.

    GET  /  /app.js  /style.css     the page, from a fixed table of the package's assets/
    GET  /api/model  /api/cell      api.py's answers, as JSON
    POST /api/explain

The standard library's server is enough for a one-user tool on the user's machine, once its
edges are held: no request path is ever a file name (the assets are read once, by name from
ASSETS: there is no traversal to make); a body is read only with a Content-Length of at most
MAX_BODY (413 before a byte of it is read); malformed JSON or pictures get 400 with a one-line
reason, unknown paths 404, other methods 405, each as {"error": "..."}. A connection has its
own thread and socket timeout, so 20 clients are served at once and one that stalls or leaves
costs the others nothing. Nothing is printed: request lines go to `log` (--verbose), if given.
"""

import errno
import ipaddress
import json
import re
import socket
import socketserver
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs

from mnist_cli.errors import ServeError
from mnist_cli.serve.api import Api, ApiError

# the most bytes a request body may have: a picture file of ~1.5 MB, as base64
MAX_BODY = 2 * 1024 * 1024
CLIENT_TIMEOUT = 10.0  # seconds a connection may stay silent (a stalled or idle client)
ASSETS = {  # request path -> (file in assets/, content type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
API_GET = ("/api/model", "/api/cell")
API_POST = ("/api/explain",)
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
LENGTH = re.compile(r"[0-9]{1,15}")


class Handler(BaseHTTPRequestHandler):
    """One connection: its requests, one at a time (HTTP/1.1 keep-alive)."""

    server: "Server"
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: with Nagle's algorithm the body would wait for
    # the client's delayed ACK of the headers (40 ms a request, measured by bench/serve.py)
    disable_nagle_algorithm = True

    def version_string(self) -> str:
        return "mnist-serve"  # the Server header: not Python's version

    def setup(self) -> None:
        self.timeout = self.server.client_timeout  # the socket's, every read and write
        super().setup()

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionError, TimeoutError):
            pass  # the client went away or stalled: this thread ends, no other notices

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if path in self.server.assets:
            body, kind = self.server.assets[path]
            self.reply(HTTPStatus.OK, body, kind)
        elif path == "/api/model":
            self.answer(self.server.api.model)
        elif path == "/api/cell":
            fields = parse_qs(query, keep_blank_values=True)
            self.answer(lambda: self.server.api.cell(fields))
        elif path in API_POST:
            self.not_allowed("POST")
        else:
            self.fail(HTTPStatus.NOT_FOUND, f"nothing at {path[:100]!r}")

    def do_POST(self) -> None:
        path = self.path.partition("?")[0]
        if path not in API_POST:
            if path in API_GET or path in ASSETS:
                return self.not_allowed("GET")
            return self.fail(HTTPStatus.NOT_FOUND, f"nothing at {path[:100]!r}")
        body = self.read_body()
        if body is None:
            return
        try:
            parsed = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            return self.fail(HTTPStatus.BAD_REQUEST, f"the body is not JSON ({e})")
        except RecursionError:
            return self.fail(
                HTTPStatus.BAD_REQUEST, "the body is JSON nested too deeply"
            )
        self.answer(lambda: self.server.api.explain(parsed))

    def do_other(self) -> None:
        self.not_allowed("GET, POST")

    do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_other

    def read_body(self) -> bytes | None:
        """The request's body, or None once an error is sent (nothing of it is read). A
        chunked body (no Content-Length) is refused."""
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            return self.fail(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
        if len(lengths) > 1 or not LENGTH.fullmatch(lengths[0]):
            return self.fail(
                HTTPStatus.BAD_REQUEST, "Content-Length must be one number of bytes"
            )
        n = int(lengths[0])
        if n > MAX_BODY:
            return self.fail(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the body is {n:,} bytes; the most this server reads is {MAX_BODY:,}",
            )
        body = self.rfile.read(n)
        return body if len(body) == n else None  # None: the client left before the end

    def answer(self, compute: Callable[[], dict]) -> None:
        """200 with compute()'s dict as JSON, or its ApiError's status and reason."""
        try:
            result = compute()
        except ApiError as e:
            return self.fail(HTTPStatus(e.status), str(e))
        except Exception as e:  # noqa: BLE001 (a bug: one line to the client, details to on_error)
            self.server.on_error(f"{self.command} {self.path[:100]}: {e!r}")
            return self.fail(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")
        self.reply(HTTPStatus.OK, json.dumps(result).encode(), "application/json")

    def not_allowed(self, allowed: str) -> None:
        reason = f"{self.command} is not allowed here; use {allowed}"
        self.fail(HTTPStatus.METHOD_NOT_ALLOWED, reason, {"Allow": allowed})

    def fail(self, status: HTTPStatus, reason: str, headers: dict | None = None):
        """An error as {"error": reason}; the connection is closed after it (a body the
        request may have carried is not read)."""
        self.close_connection = True
        headers = {**(headers or {}), "Connection": "close"}
        self.reply(
            status, json.dumps({"error": reason}).encode(), "application/json", headers
        )

    def send_error(self, code: int, message: str | None = None, explain=None) -> None:
        """The base class's own errors (a malformed request line, too long a header) in the
        same JSON form, not its HTML page."""
        self.fail(HTTPStatus(code), message or HTTPStatus(code).phrase)

    def reply(
        self, status: HTTPStatus, body: bytes, kind: str, headers: dict | None = None
    ) -> None:
        self.send_response(status)
        for name, value in {**HEADERS, **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        if self.server.log:
            self.server.log(f"{self.address_string()} {format % args}")


class Server(ThreadingHTTPServer):
    """The server of one Api: a thread per connection, daemon threads (Ctrl-C does not wait
    for a stalled client), the port refused if another program listens on it."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True  # a restart need not wait for the last run's TIME_WAIT
    allow_reuse_port = False  # ... but a port another server listens on is refused
    request_queue_size = 64  # connections waiting to be accepted: 20 clients at once

    def __init__(
        self,
        address: tuple,
        family: socket.AddressFamily,
        api: Api,
        client_timeout: float,
        log: Callable[[str], None] | None,
        on_error: Callable[[str], None],
    ):
        self.address_family = family
        self.api, self.client_timeout = api, client_timeout
        self.log, self.on_error = log, on_error
        folder = (
            resources.files(__package__) / "assets"
        )  # read once: path -> (body, type)
        self.assets = {
            p: ((folder / f).read_bytes(), t) for p, (f, t) in ASSETS.items()
        }
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        # HTTPServer's would look the host's name up (socket.getfqdn), which can wait on DNS
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address) -> None:
        self.on_error(f"a connection from {client_address[0]} failed")

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"

    @property
    def loopback(self) -> bool:
        """Whether only this machine can reach the server (127.0.0.0/8, ::1)."""
        return ipaddress.ip_address(self.server_address[0].split("%")[0]).is_loopback


def make_server(
    api: Api,
    host: str,
    port: int,
    *,
    client_timeout: float = CLIENT_TIMEOUT,
    log: Callable[[str], None] | None = None,
    on_error: Callable[[str], None] = lambda message: None,
) -> Server:
    """A Server of `api` listening on host:port (port 0: any free one; see .url), not yet
    serving: call serve_forever(). ServeError (one line) if it cannot listen there."""
    try:
        family, _, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
        return Server(address, family, api, client_timeout, log, on_error)
    except socket.gaierror as e:
        raise ServeError(f"cannot listen on {host}: {e.strerror}", "host") from None
    except OSError as e:
        reason, about = {
            errno.EADDRINUSE: ("the port is in use by another program", "port"),
            errno.EACCES: ("permission denied (ports below 1024 need root)", "port"),
            errno.EADDRNOTAVAIL: ("this machine has no such address", "host"),
        }.get(e.errno, (e.strerror, "host"))
        raise ServeError(f"cannot listen on {host}:{port}: {reason}", about) from None
