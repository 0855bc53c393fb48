"""Shared fixtures: the bundled MNIST copy, a local HTTP server, and a session-wide MNIST cache.

`http_server(directory=None, routes=None)` starts a real server on 127.0.0.1 and returns a
`LocalServer`: `.url` ("http://127.0.0.1:PORT/"), `.paths` (every request path received, in
order), `.headers` (their headers), and `.routes`, a dict mapping a request path such as
"/train-labels-idx1-ubyte.gz" to either (status, body bytes) or a callable taking the
`BaseHTTPRequestHandler` and answering however it likes (for fault injection). Paths not in
`routes` are served from `directory` (404 if there is none).

The data, each prepared once per session:

- `mnist_cache` and `data_args`: the real MNIST, verified into a cache, and the mnist-train /
  mnist-eval arguments that read it (`--cache-dir ... --mirror ...`);
- `mnist_splits`: its (train, test) `Split`s;
- `mini_mnist`: the first 2,000 training and 500 test images of MNIST as a dataset of their
  own, swapped into the catalogue as "mnist" for the test; its value is the data arguments
  that read it. For tests of what a run does (continuing, numbering, files), not of how well
  it learns: an epoch takes milliseconds instead of a quarter second.

And the runs of `trained_runs`, each trained once per session, when a test first asks for
it (`trained_runs["softmax"]` is (run directory, what mnist-train printed)); tests only read
them:

- "softmax", "linear": the default runs (10 epochs on the real MNIST, as `mnist-train
  --model M` trains them);
- "mini-linear": 1 epoch of linear on `mini_mnist` (use it with the `mini_mnist` fixture).
"""

import os

# One BLAS thread for the suite, unless the caller says otherwise. Set before numpy is first
# imported (here: pytest imports no numpy, and this module comes first). The tests' matrices
# are small, and the two cores are shared with the batches thread, the console-script
# subprocesses and whatever else runs: OpenBLAS's second thread then spins more than it
# works (lstsq on a 1,200 × 785 design: 0.16 s of CPU with one thread, 3.1 s with two on a
# loaded machine). `make bench` measures the threaded trainer; the tests check results.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import functools
import hashlib
import http.server
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import write_idx

from mnist_cli.cli import train_command
from mnist_cli.data import DATASETS, MNIST, DataFile, Dataset, Split, load_dataset
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


@pytest.fixture(scope="session")
def data_args(mnist_cache: Path, mnist_server_url: str) -> list[str]:
    """The mnist-train / mnist-eval arguments that read the real MNIST from `mnist_cache`."""
    return ["--cache-dir", str(mnist_cache), "--mirror", mnist_server_url]


@pytest.fixture(scope="session")
def mnist_splits(mnist_cache: Path, mnist_server_url: str) -> tuple[Split, Split]:
    """The real MNIST's (train, test) splits, read from `mnist_cache`."""
    return load_dataset(MNIST, mnist_cache, [mnist_server_url])


MINI_TRAIN, MINI_TEST = 2000, 500  # images in mini_mnist's splits


@dataclass(frozen=True)
class MiniMnist:
    dataset: Dataset  # "mnist", its files and checksums those of the mini copy
    args: list[str]  # --cache-dir and --mirror that read it
    splits: tuple[Split, Split]  # its (train, test) images and labels


@pytest.fixture(scope="session")
def mini_mnist_data(
    tmp_path_factory: pytest.TempPathFactory, mnist_splits: tuple[Split, Split]
) -> MiniMnist:
    """The first MINI_TRAIN training and MINI_TEST test images of MNIST, written as IDX
    files into a folder that serves as their mirror, pinned by their own sha256."""
    folder = tmp_path_factory.mktemp("mini-mnist")
    train, test = mnist_splits
    arrays = {
        MNIST.train_images: train.images[:MINI_TRAIN].reshape(-1, 28, 28),
        MNIST.train_labels: train.labels[:MINI_TRAIN],
        MNIST.test_images: test.images[:MINI_TEST].reshape(-1, 28, 28),
        MNIST.test_labels: test.labels[:MINI_TEST],
    }
    pinned = []
    for file, array in arrays.items():
        path = folder / file.name
        write_idx(path, array)
        sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        pinned.append(DataFile(file.name, sha256, size=path.stat().st_size))
    dataset = replace(
        MNIST,
        train_images=pinned[0],
        train_labels=pinned[1],
        test_images=pinned[2],
        test_labels=pinned[3],
        mirrors=(str(folder),),
    )
    cache = tmp_path_factory.mktemp("mini-mnist-cache")
    args = ["--cache-dir", str(cache), "--mirror", str(folder)]
    splits = (
        Split(train.images[:MINI_TRAIN], train.labels[:MINI_TRAIN]),
        Split(test.images[:MINI_TEST], test.labels[:MINI_TEST]),
    )
    return MiniMnist(dataset, args, splits)


@pytest.fixture
def mini_mnist(
    mini_mnist_data: MiniMnist, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """The catalogue's "mnist" replaced by mini_mnist for this test; the data arguments
    (--cache-dir, --mirror) that read it."""
    monkeypatch.setitem(DATASETS, "mnist", mini_mnist_data.dataset)
    return mini_mnist_data.args


def _fingerprint(run: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run.iterdir())
    }


class TrainedRuns:
    """Runs trained on first use and kept for the session: `runs[name]` is (run directory,
    what mnist-train printed). The names and their arguments are in RECIPES."""

    def __init__(self, root: Path, data_args: list[str], mini: MiniMnist) -> None:
        self.root, self.mini = root, mini
        self.recipes = {
            "softmax": ["--model", "softmax", *data_args],
            "linear": ["--model", "linear", *data_args],
            "mini-linear": [
                "--model",
                "linear",
                "--epochs",
                "1",
                "-q",
                *mini.args,
            ],
        }
        self.runs: dict[str, tuple[Path, str]] = {}
        self.fingerprints: dict[str, dict[str, str]] = {}

    def __getitem__(self, name: str) -> tuple[Path, str]:
        if name not in self.runs:
            out = self.root / name
            with pytest.MonkeyPatch.context() as patch:
                if name.startswith("mini-"):
                    patch.setitem(DATASETS, "mnist", self.mini.dataset)
                args = [*self.recipes[name], "--out", str(out)]
                result = CliRunner().invoke(train_command, args)
            assert result.exit_code == 0, result.output
            self.runs[name] = (out, result.output)
            self.fingerprints[name] = _fingerprint(out)
        return self.runs[name]

    def changed(self) -> list[str]:
        """The runs whose files are not those they were trained with."""
        return [
            n
            for n, (run, _) in self.runs.items()
            if _fingerprint(run) != self.fingerprints[n]
        ]


@pytest.fixture(scope="session")
def trained_runs(
    tmp_path_factory: pytest.TempPathFactory,
    data_args: list[str],
    mini_mnist_data: MiniMnist,
) -> Iterator[TrainedRuns]:
    """The shared runs (see the module docstring), each trained the first time a test asks
    for it. Tests read them: one that changes a file in a run fails the session's teardown."""
    runs = TrainedRuns(
        tmp_path_factory.mktemp("trained-runs"), data_args, mini_mnist_data
    )
    yield runs
    changed = runs.changed()
    assert not changed, (
        f"tests changed the shared runs {changed}; copy a run to edit it"
    )


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--screenshot",
        metavar="PNG",
        help="Write a screenshot of mnist-serve's page there (tests/test_serve_browser.py): "
        "docs/img/serve.png is made so.",
    )
