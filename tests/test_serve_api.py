"""mnist-serve's HTTP API against a real server on 127.0.0.1 (port 0): every route, every bad
request, many clients at once, clients that stall or vanish, and a quiet terminal."""

import base64
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from serve_helpers import post, request, run_api, serving

from mnist_cli.data import MNIST
from mnist_cli.metrics import evaluate
from mnist_cli.nn import D, K
from mnist_cli.nn.architecture import build, dense_params, one_layer
from mnist_cli.nn.layers import Params, inputs
from mnist_cli.predict.images import classify, prepare
from mnist_cli.predict.preprocess import preprocess
from mnist_cli.serve.api import MAX_CELL, Api
from mnist_cli.serve.server import MAX_BODY

DIGITS = Path(__file__).resolve().parents[1] / "docs" / "img" / "digits"


@pytest.fixture(scope="module")
def api(trained_runs, mnist_splits) -> Api:
    run, _ = trained_runs["softmax"]
    return run_api(run, mnist_splits[1])


@pytest.fixture(scope="module")
def server(api):
    with serving(api) as server:
        yield server


def test_the_page_is_the_packaged_assets(server):
    folder = resources.files("mnist_cli.serve") / "assets"
    for path, name, kind in [
        ("/", "index.html", "text/html"),
        ("/app.js", "app.js", "text/javascript"),
        ("/style.css", "style.css", "text/css"),
    ]:
        status, headers, body = request(server, "GET", path)
        assert status == 200, path
        assert headers["Content-Type"].startswith(kind)
        assert body == (folder / name).read_bytes()
        assert headers["Content-Security-Policy"].startswith("default-src 'self'")
    index = (folder / "index.html").read_text()
    assert 'src="/app.js"' in index and 'href="/style.css"' in index
    assert "http" not in index.replace("http-equiv", ""), (
        "the page loads nothing remote"
    )


def test_the_model_and_its_confusion_matrix_are_mnist_evals(server, api, mnist_splits):
    status, _, body = request(server, "GET", "/api/model")
    model = json.loads(body)
    test = mnist_splits[1]
    expected = evaluate(api.network, test.images, test.labels)
    assert status == 200
    assert model["model"] == "softmax" and model["exact"] is True
    assert model["value_name"] == "probability" and model["test_images"] == 10_000
    assert model["accuracy"] == expected.accuracy
    assert model["confusion"] == expected.confusion_matrix.tolist()
    assert model["class_names"] == list(MNIST.class_names)


def test_a_test_image_is_explained_exactly(server, api, mnist_splits):
    test = mnist_splits[1]
    pixels = test.images[7]  # (D,) uint8
    status, why = post(server, {"pixels": pixels.tolist()})
    assert status == 200
    x = inputs(pixels[None], np.float64)[0]
    W, b = (a.astype(np.float64) for a in dense_params(api.network)[0])
    z = W @ x + b  # (K,)
    k = int(z.argmax())
    assert why["top"] == why["class"] == k == classify(api.network, pixels[None])[0][0]
    assert why["pixels"] == pixels.tolist()
    np.testing.assert_allclose(why["logits"], z, rtol=1e-12)
    np.testing.assert_allclose(why["gradient"], W[k])
    np.testing.assert_allclose(why["contributions"], W[k] * x)
    assert sum(why["contributions"]) + b[k] == pytest.approx(z[k], abs=1e-9)
    assert why["rest"] == pytest.approx(b[k], abs=1e-9)
    # another class on request
    status, other = post(server, {"pixels": pixels.tolist(), "class": (k + 1) % K})
    assert other["class"] == (k + 1) % K and other["top"] == k
    np.testing.assert_allclose(other["gradient"], W[(k + 1) % K])


def drawing(grey: np.ndarray) -> dict:
    h, w = grey.shape
    data = base64.b64encode(grey.astype(np.uint8).tobytes()).decode()
    return {"drawing": {"width": w, "height": h, "grey": data}}


def test_a_drawing_goes_through_mnist_predicts_preprocessing(server, mnist_splits):
    # a test digit drawn 10 times larger, off-centre, black on white paper
    digit = mnist_splits[1].images[3].reshape(28, 28)
    grey = np.full((300, 280), 255, np.uint8)
    grey[10:290, 0:280] = 255 - np.kron(digit, np.ones((10, 10), np.uint8))
    status, why = post(server, drawing(grey))
    assert status == 200
    assert why["pixels"] == preprocess(grey).tolist()


def test_an_image_file_is_read_as_mnist_predict_reads_it(server, api):
    file = DIGITS / "seven.png"
    body = {"image": base64.b64encode(file.read_bytes()).decode(), "name": file.name}
    status, why = post(server, body)
    pixels = prepare(file)  # (D,)
    digits, values = classify(api.network, pixels[None])
    assert status == 200
    assert why["pixels"] == pixels.tolist()
    assert why["top"] == digits[0] == 7
    assert why["output"][why["top"]] == pytest.approx(values[0], abs=1e-6)


def test_a_confusion_cell_lists_its_test_images(server, api, mnist_splits):
    labels = mnist_splits[1].labels
    predicted = evaluate_predictions(api)
    for true, pred in [(4, 9), (1, 1)]:
        status, _, body = request(server, "GET", f"/api/cell?true={true}&pred={pred}")
        cell = json.loads(body)
        members = np.flatnonzero((labels == true) & (predicted == pred))
        assert status == 200 and cell["count"] == len(members)
        assert len(cell["images"]) == min(len(members), MAX_CELL)
        assert {i["index"] for i in cell["images"]} <= set(members.tolist())
        for image in cell["images"]:
            assert (image["label"], image["predicted"]) == (true, pred)
            assert image["pixels"] == mnist_splits[1].images[image["index"]].tolist()
        values = [i["value"] for i in cell["images"]]
        # mistakes: the most confident first; the diagonal: the least confident first
        assert values == sorted(values, reverse=true != pred)


def evaluate_predictions(api: Api) -> np.ndarray:
    return api.network.logits(inputs(api.test.images)).argmax(axis=1)


def an_mlp_api(test_split) -> Api:
    rng = np.random.default_rng(0)
    return Api.load(build("mlp", "normal", rng, (32,), "relu"), MNIST, test_split)


def test_an_mlp_is_explained_by_gradient_times_input(mnist_splits):
    mlp_api = an_mlp_api(mnist_splits[1])
    pixels = mnist_splits[1].images[0]
    with serving(mlp_api) as server:
        _, model = request(server, "GET", "/api/model")[::2]
        status, why = post(server, {"pixels": pixels.tolist(), "class": 3})
    assert json.loads(model)["exact"] is False
    assert status == 200 and why["exact"] is False and why["class"] == 3
    x = inputs(pixels[None], np.float64)[0]
    np.testing.assert_allclose(why["contributions"], np.array(why["gradient"]) * x)
    assert sum(why["contributions"]) + why["rest"] == pytest.approx(why["logits"][3])


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


PIXELS = [0] * D
BAD_BODIES = [
    (b"{not json", "the body is not JSON"),
    (b"\xff\xfe", "the body is not JSON"),
    (b"[1, 2]", "the body must be a JSON object"),
    (b"[" * 100_000, "the body is JSON nested too deeply"),
    (b"{}", "give exactly one picture: drawing, image, pixels"),
    ({"pixels": PIXELS, "image": "AA=="}, "give exactly one picture"),
    ({"pixels": PIXELS, "colour": 1}, "unknown field 'colour'"),
    ({"pixels": [0] * (D - 1)}, f"pixels must be a list of {D} integers from 0 to 255"),
    ({"pixels": [256] * D}, "pixels must be a list of"),
    ({"pixels": [0.5] * D}, "pixels must be a list of"),
    ({"pixels": PIXELS, "class": 10}, "class must be an integer from 0 to 9"),
    ({"pixels": PIXELS, "class": "3"}, "class must be an integer"),
    ({"pixels": PIXELS, "class": True}, "class must be an integer"),
    ({"image": "!!not base64!!"}, "image is not valid base64"),
    ({"image": 12}, "image must be a base64 string"),
    (
        {"image": b64(b"just some text"), "name": "x.png"},
        "the image: not a picture in a format mnist-predict reads",
    ),
    ({"image": b64(b"\x89PNG\r\n\x1a\n")}, "the image: "),
    ({"drawing": [1, 2]}, "drawing must be an object with width, height and grey"),
    (
        {"drawing": {"width": 2, "height": 2, "grey": b64(b"abc")}},
        "drawing grey holds 3 bytes; width × height is 4",
    ),
    (
        {"drawing": {"width": 0, "height": 2, "grey": ""}},
        "drawing width and height must be integers from 1 to 2048",
    ),
    (
        {"drawing": {"width": 1, "height": 2049, "grey": b64(b"\0" * 2049)}},
        "drawing width and height must be integers from 1 to 2048",
    ),
    (
        {"drawing": {"width": 50, "height": 40, "grey": b64(b"\xff" * 2000)}},
        "no digit found: the picture is blank",
    ),
]


@pytest.mark.parametrize("body, reason", BAD_BODIES)
def test_a_bad_picture_is_a_400_with_a_one_line_reason(server, body, reason):
    status, answer = post(server, body)
    assert status == 400, answer
    assert answer["error"].startswith(reason), answer
    assert "\n" not in answer["error"]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "true=4",
        "true=4&pred=x",
        "true=10&pred=1",
        "true=1&true=2&pred=1",
        "pred=-1",
    ],
)
def test_a_bad_cell_is_a_400(server, query):
    status, _, body = request(server, "GET", f"/api/cell?{query}")
    assert status == 400
    assert "must be given once, a class from 0 to 9" in json.loads(body)["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/nope",
        "/index.html",
        "/assets/app.js",
        "/../pyproject.toml",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/app.js/../../server.py",
        "//etc/passwd",
        "/api/../server.py",
        "/api/model/extra",
    ],
)
def test_no_path_reaches_the_filesystem(server, path):
    status, _, body = request(server, "GET", path)
    assert status == 404
    # the path as the server read it ("//x" is "/x" to http.server, as it should)
    assert json.loads(body)["error"] == f"nothing at {'/' + path.lstrip('/')!r}"


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("PUT", "/", "GET, POST"),
        ("DELETE", "/api/model", "GET, POST"),
        ("HEAD", "/", "GET, POST"),
        ("OPTIONS", "/api/explain", "GET, POST"),
        ("GET", "/api/explain", "POST"),
        ("POST", "/", "GET"),
        ("POST", "/api/model", "GET"),
    ],
)
def test_only_get_and_post_where_they_belong(server, method, path, allowed):
    status, headers, _ = request(server, method, path, b"{}")
    assert status == 405 and headers["Allow"] == allowed


def raw(server, data: bytes, timeout: float = 5.0) -> bytes:
    """Send `data` on a fresh connection; everything the server sends back until it closes."""
    with socket.create_connection(server.server_address[:2], timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_body_too_large_is_refused_before_it_is_read(server):
    head = f"POST /api/explain HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_BODY + 1}\r\n\r\n"
    start = time.perf_counter()
    answer = raw(server, head.encode() + b"{")  # the rest of the body never comes
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert (
        b'"error": "the body is 2,097,153 bytes; the most this server reads is'
        in answer
    )
    assert time.perf_counter() - start < 2, "it did not wait for the body"


@pytest.mark.parametrize(
    "headers, status, reason",
    [
        ("", 411, "Content-Length is required"),
        ("Transfer-Encoding: chunked\r\n", 411, "Content-Length is required"),
        (
            "Content-Length: 12abc\r\n",
            400,
            "Content-Length must be one number of bytes",
        ),
        ("Content-Length: 2\r\nContent-Length: 2\r\n", 400, "Content-Length must be"),
    ],
)
def test_a_body_without_a_plain_length_is_refused(server, headers, status, reason):
    head = f"POST /api/explain HTTP/1.1\r\nHost: x\r\n{headers}\r\n{{}}"
    answer = raw(server, head.encode())
    assert answer.startswith(f"HTTP/1.1 {status} ".encode())
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"].startswith(reason)


def test_a_malformed_request_line_is_a_one_line_json_error(server):
    answer = raw(server, b"GET /a b HTTP/1.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")
    error = json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
    assert error == "Bad request syntax ('GET /a b HTTP/1.1')"
    # a line without a version is HTTP/0.9, answered with the body alone
    assert json.loads(raw(server, b"GARBAGE\r\n\r\n")) == {
        "error": "Bad request syntax ('GARBAGE')"
    }


def test_twenty_clients_at_once_are_each_answered(server, api, mnist_splits):
    images = mnist_splits[1].images[:20]
    expected = classify(api.network, images)[0]
    start = threading.Barrier(20)

    def client(i):
        start.wait()
        return post(server, {"pixels": images[i].tolist()})

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(client, range(20)))
    assert [status for status, _ in answers] == [200] * 20
    assert [why["top"] for _, why in answers] == expected.tolist()


def test_a_stalled_client_costs_the_others_nothing_and_is_let_go(api):
    with serving(api, client_timeout=0.8) as server:
        stalled = socket.create_connection(server.server_address[:2], timeout=5)
        stalled.sendall(b"POST /api/explain HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
        idle = socket.create_connection(server.server_address[:2], timeout=5)
        start = time.perf_counter()
        assert request(server, "GET", "/api/model")[0] == 200
        # ... answered while the two silent connections were still held, unanswered
        for silent in (stalled, idle):
            silent.setblocking(False)
            with pytest.raises(BlockingIOError):  # nothing to read, and not closed
                silent.recv(100)
            silent.settimeout(5)
        # each is closed by the server at its timeout, unanswered
        assert stalled.recv(100) == b"" and idle.recv(100) == b""
        assert time.perf_counter() - start < 3
        stalled.close()
        idle.close()


def test_a_client_that_vanishes_mid_request_leaves_the_server_serving(server, capfd):
    for cut in (
        b'POST /api/explain HTTP/1.1\r\nContent-Length: 5000\r\n\r\n{"pix',
        b"GET /api/cell?true=1&pred=1 HTTP/1.1\r\n",
    ):
        with socket.create_connection(server.server_address[:2]) as s:
            s.sendall(cut)
    # a client that asks for the largest answer and leaves before reading it
    with socket.create_connection(server.server_address[:2]) as s:
        s.sendall(b"GET /api/cell?true=1&pred=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        s.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
        )
    assert request(server, "GET", "/api/model")[0] == 200
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_nothing_is_printed_per_request_unless_a_log_is_given(api, capfd):
    lines = []
    with serving(api) as quiet:
        request(quiet, "GET", "/")
        request(quiet, "GET", "/nope")
        post(quiet, b"{")
    with serving(api, log=lines.append) as verbose:
        request(verbose, "GET", "/api/model")
        request(verbose, "GET", "/nope")
    assert capfd.readouterr() == ("", "")
    assert len(lines) == 2, lines
    assert '"GET /api/model HTTP/1.1" 200' in lines[0]
    assert '"GET /nope HTTP/1.1" 404' in lines[1]


def test_an_internal_error_is_a_500_reported_to_on_error(api, monkeypatch):
    errors = []
    monkeypatch.setattr(Api, "model", lambda self: 1 / 0)
    with serving(api, on_error=errors.append) as server:
        status, _, body = request(server, "GET", "/api/model")
    assert status == 500 and json.loads(body) == {"error": "internal error"}
    assert errors == ["GET /api/model: ZeroDivisionError('division by zero')"]


def test_keep_alive_serves_several_requests_on_one_connection(server):
    import http.client

    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=5)
    try:
        for path in ("/", "/api/model", "/style.css"):
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            assert response.status == 200
    finally:
        connection.close()


def test_float32_one_layer_weights_give_float64_explanations(mnist_splits):
    W = np.random.default_rng(0).standard_normal((K, D)).astype(np.float32)
    network = one_layer("linear", Params(W=W, b=np.ones(K, np.float32)))
    linear = Api.load(network, MNIST, mnist_splits[1])
    why = linear.explain({"pixels": mnist_splits[1].images[0].tolist(), "class": 2})
    assert sum(why["contributions"]) + 1.0 == pytest.approx(why["logits"][2], abs=1e-9)
    assert linear.model()["value_name"] == "score"
