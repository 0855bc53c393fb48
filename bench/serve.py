"""mnist-serve's latency: one drawing in, what the model sees, says and why out, p95 over 200.

A real server (serve/server.py, a thread of this process, port 0) and one keep-alive client
posting 200 drawings one after another: MNIST test digits drawn 10 times larger, black on a
white 280 × 280 pad, as the page sends them. Each request's time runs from sending it to the
answer parsed (json.loads), so it holds the preprocessing, the forward and backward passes, the
JSON both ways and the HTTP. The weights are random (N(0, 2/fan_in)): time does not depend on
their values. Targets (issue 20): p95 ≤ 20 ms for the mlp 784-256-10, ≤ 60 ms for the cnn
of configs/cnn.toml (16,32 channels, kernel 5, hidden 128).

    .venv/bin/python bench/serve.py      (also run by `make bench`: adds its numbers to
                                          bench/results.json as "serve_latency")
"""

import os

# one BLAS thread, as mnist-serve runs (the CLI starts numpy so: threads.py); set before numpy
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import base64
import http.client
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from mnist_cli.data import MNIST, load_split
from mnist_cli.nn.architecture import build, describe
from mnist_cli.serve.api import Api
from mnist_cli.serve.server import make_server

MIRROR = Path(__file__).resolve().parents[1] / "data" / "mnist"
RESULTS = Path(__file__).resolve().parent / "results.json"  # serve_latency goes in
REQUESTS = 200
TARGETS_MS = {"mlp 784-256-10 relu": 20.0}  # and any cnn: CNN_TARGET_MS
CNN_TARGET_MS = 60.0  # issue 20: p95 for a cnn (configs/cnn.toml's 16,32 k5 / 128)


def drawings(images: np.ndarray) -> list[bytes]:
    """Each image (D,) as the page's POST body: 280 × 280 grey, black ink on white."""
    bodies = []
    for image in images:
        grey = 255 - np.kron(image.reshape(28, 28), np.ones((10, 10), np.uint8))
        data = base64.b64encode(grey.tobytes()).decode()
        drawing = {"width": 280, "height": 280, "grey": data}
        bodies.append(json.dumps({"drawing": drawing}).encode())
    return bodies


def latencies(api: Api, bodies: list[bytes]) -> list[float]:
    """Seconds per request, each answered in full, on one keep-alive connection."""
    server = make_server(api, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=30)
    headers = {"Content-Type": "application/json"}
    times = []
    try:
        for body in bodies:
            start = time.perf_counter()
            connection.request("POST", "/api/explain", body, headers)
            response = connection.getresponse()
            answer = json.loads(response.read())
            times.append(time.perf_counter() - start)
            assert response.status == 200 and len(answer["contributions"]) == 784
    finally:
        connection.close()
        server.shutdown()
        server.server_close()
    return times


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mnist-bench-serve-") as cache:
        test = load_split(MNIST, "test", Path(cache), mirrors=[str(MIRROR)])
    bodies = drawings(test.images[:REQUESTS])
    rng = np.random.default_rng(0)
    results = {}
    for network in (
        build("softmax", "normal", rng),
        build("mlp", "normal", rng, hidden=(256,), activation="relu"),
        build("cnn", "normal", rng, hidden=(128,), channels=(16, 32), kernel=5),
    ):
        api = Api.load(network, MNIST, test)
        latencies(api, bodies[:20])  # warm-up: imports, caches
        ms = np.array(latencies(api, bodies)) * 1000
        name = describe(network)
        p50, p95 = np.percentile(ms, [50, 95])
        results[name] = {"p50_ms": p50, "p95_ms": p95, "max_ms": ms.max()}
        target = TARGETS_MS.get(name, CNN_TARGET_MS if "cnn" in name else None)
        met = "" if target is None else "met" if p95 <= target else "NOT met"
        print(
            f"mnist-serve {name:<20} {REQUESTS} drawings: p50 {p50:5.1f} ms  "
            f"p95 {p95:5.1f} ms  max {ms.max():5.1f} ms"
            + (f"  (target p95 ≤ {target:g} ms: {met})" if target else ""),
            file=sys.stderr,
        )
    as_floats = {n: {k: float(v) for k, v in r.items()} for n, r in results.items()}
    print(json.dumps({"serve_latency": as_floats}))
    if RESULTS.exists():  # make bench: beside run.py's results, written just before
        merged = json.loads(RESULTS.read_text()) | {"serve_latency": as_floats}
        temp = RESULTS.with_name(RESULTS.name + ".tmp")
        temp.write_text(json.dumps(merged, indent=2) + "\n")
        os.replace(temp, RESULTS)


if __name__ == "__main__":
    main()
