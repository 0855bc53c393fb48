"""Shared fixtures: the bundled MNIST copy, a local HTTP server, and a session-wide MNIST cache.

`http_server(directory=None, routes=None)` starts a real server on 127.0.0.1 and returns a
`LocalServer`: `.url` ("http://127.0.0.1:PORT/"), `.paths` (every request path received, in
order), `.headers` (their headers), and `.routes`, a dict mapping a request path such as
"/train-labels-idx1-ubyte.gz" to either (status, body bytes) or a callable taking the
`BaseHTTPRequestHandler` and answering however it likes (for fault injection). Paths not in
`routes` are served from `directory` (404 if there is none).
"""

import functools
import http.server
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mnist_cli.data.catalogue import MNIST
from mnist_cli.data.fetch import fetch

Route = tuple[int, bytes] | Callable[[http.server.BaseHTTPRequestHandler], None]


class RecordingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a directory, records each request, and lets `routes` override any path."""

    server: "RecordingServer"

    def do_GET(self) -> None:
        self.server.state.paths.append(self.path)
        self.server.state.headers.append(dict(self.headers))
        route = self.server.state.routes.get(self.path)
        if route is None:
            super().do_GET()
        elif callable(route):
            route(self)
        else:
            status, body = route
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output quiet


class RecordingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    state: "LocalServer"


@dataclass
class LocalServer:
    url: str
    routes: dict[str, Route] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    close: Callable[[], None] = lambda: None


def start_server(
    directory: Path | None = None, routes: dict[str, Route] | None = None
) -> LocalServer:
    """Start a RecordingServer in a daemon thread; call `.close()` on the result to stop it."""
    empty = tempfile.TemporaryDirectory() if directory is None else None
    root = str(directory) if directory is not None else empty.name
    handler = functools.partial(RecordingHandler, directory=root)
    server = RecordingServer(("127.0.0.1", 0), handler)
    state = LocalServer(url=f"http://127.0.0.1:{server.server_address[1]}/")
    state.routes.update(routes or {})
    server.state = state
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}
    )
    thread.daemon = True
    thread.start()

    def close() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        if empty is not None:
            empty.cleanup()

    state.close = close
    return state


@pytest.fixture
def http_server() -> Iterator[Callable[..., LocalServer]]:
    """Factory: `http_server(directory=None, routes=None) -> LocalServer`, stopped at teardown."""
    servers: list[LocalServer] = []

    def start(
        directory: Path | None = None, routes: dict[str, Route] | None = None
    ) -> LocalServer:
        servers.append(start_server(directory, routes))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The bundled offline copy of the four MNIST .gz files."""
    return Path(__file__).resolve().parents[1] / "data" / "mnist"


@pytest.fixture(scope="session")
def mnist_server_url(mnist_dir: Path) -> Iterator[str]:
    """URL of a local server (one per session) serving the bundled MNIST copy."""
    server = start_server(mnist_dir)
    yield server.url
    server.close()


@pytest.fixture(scope="session")
def mnist_cache(
    tmp_path_factory: pytest.TempPathFactory, mnist_server_url: str
) -> Path:
    """A cache root holding the four verified MNIST files under "mnist/", fetched once per session.

    Pass it as `cache_root` with `mirrors=[mnist_server_url]`: every load is then a cache hit.
    """
    cache_root = tmp_path_factory.mktemp("mnist-cache")
    for file in MNIST.files:
        fetch(file, [mnist_server_url], cache_root / MNIST.name)
    return cache_root
