"""Helpers of the mnist-serve tests: a server of an Api in a thread, and plain HTTP calls."""

import http.client
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from mnist_cli.data import MNIST
from mnist_cli.rundir.weights import load_weights
from mnist_cli.serve.api import Api
from mnist_cli.serve.server import Server, make_server


def run_api(run, test_split) -> Api:
    """The Api of a run directory on MNIST's test split."""
    return Api.load(load_weights(run).network, MNIST, test_split)


@contextmanager
def serving(api: Api, **options) -> Iterator[Server]:
    """make_server(api, "127.0.0.1", 0, **options) serving in a thread, for the block."""
    server = make_server(api, "127.0.0.1", 0, **options)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def request(
    server: Server,
    method: str,
    path: str,
    body: bytes | dict | None = None,
    headers: dict | None = None,
) -> tuple[int, dict, bytes]:
    """(status, headers, body) of one request on a connection of its own."""
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=10)
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def post(server: Server, body: bytes | dict) -> tuple[int, dict]:
    """POST /api/explain: (status, the JSON answer)."""
    status, _, data = request(server, "POST", "/api/explain", body)
    return status, json.loads(data)
