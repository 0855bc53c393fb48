"""The page's JSON API without the HTTP: what mnist-serve answers, from one loaded run.

    GET  /api/model                 the model, its accuracy and confusion matrix on the test split
    POST /api/explain               one picture -> what the model sees, what it says, and why
    GET  /api/cell?true=I&pred=J    the test images of one confusion cell (at most MAX_CELL)

POST /api/explain takes a JSON object with one picture and, optionally, "class" (0 to K − 1,
the class to explain; default the top one):

    "drawing": {"width": w, "height": h, "grey": base64 of w·h bytes, row by row, 0 black}
    "image":   base64 of a picture file (PNG, JPEG, ...), read by mnist-predict's reader
    "pixels":  784 integers 0..255: an MNIST image as the model sees it (a test image)

A drawing or an image is made MNIST-like by mnist-predict's preprocessing (preprocess.py), so
the page sees what `mnist-predict` would. Every answer is a dict ready for json.dumps; a request
that cannot be answered raises ApiError, with a one-line reason and the HTTP status to send.
"""

import base64
import binascii
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_cli.data import Dataset, Split
from mnist_cli.errors import ImageError, MissingExtraError
from mnist_cli.metrics import chunked_logits, evaluation_of
from mnist_cli.nn import D
from mnist_cli.nn.architecture import describe, kind_of
from mnist_cli.nn.layers import inputs
from mnist_cli.nn.losses import predict
from mnist_cli.nn.network import Network
from mnist_cli.predict.images import VALUE_NAMES, prepare
from mnist_cli.predict.pictures import SUFFIXES
from mnist_cli.predict.preprocess import preprocess
from mnist_cli.serve.explain import explain, in_float64, is_exact

MAX_CELL = 100  # test images listed for one confusion cell
MAX_SIDE = (
    2048  # pixels on a drawing's side (the page's pad is 280): bounds preprocess's work
)
PICTURES = ("drawing", "image", "pixels")


class ApiError(ValueError):
    """A request the API cannot answer: `status` (400 unless said) and a one-line reason."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class TestScores:
    """The model on the test split: each image's prediction and the value it gave it."""

    predicted: np.ndarray  # (N,) argmaxₖ ŷᵢₖ
    value: (
        np.ndarray
    )  # (N,) ŷ at the prediction: probability, or the linear model's score
    confusion: np.ndarray  # (K, K) [true, predicted] counts
    accuracy: float


def score(network: Network, test: Split) -> TestScores:
    """Score `network` on the test split, as mnist-eval does (metrics.chunked_logits)."""
    predicted = np.zeros(len(test.labels), np.int64)  # (N,)
    value = np.zeros(len(test.labels))  # (N,)
    for rows, Z in chunked_logits(network, test.images):  # Z (n, K)
        Y_hat = predict(network.output, Z)  # (n, K)
        predicted[rows] = Y_hat.argmax(axis=1)
        value[rows] = Y_hat[np.arange(len(Y_hat)), predicted[rows]]
    result = evaluation_of(test.labels, predicted)
    return TestScores(predicted, value, result.confusion_matrix, result.accuracy)


@dataclass(frozen=True)
class Api:
    """One run, loaded once: the network (float32, as trained) and its float64 copy for the
    explanations, the dataset's names, the test split and its scores."""

    network: Network
    exact: Network  # explain.in_float64(network)
    dataset: Dataset
    test: Split
    scores: TestScores

    @classmethod
    def load(cls, network: Network, dataset: Dataset, test: Split) -> "Api":
        """Score the test split once; the answers are then read from memory."""
        scores = score(network, test)
        return cls(network, in_float64(network), dataset, test, scores)

    def model(self) -> dict:
        """GET /api/model."""
        return {
            "model": describe(self.network),
            "kind": kind_of(self.network),
            "dataset": self.dataset.name,
            "class_names": list(self.dataset.class_names),
            "value_name": VALUE_NAMES[kind_of(self.network)],
            "exact": is_exact(self.network),
            "test_images": len(self.test.labels),
            "accuracy": self.scores.accuracy,
            "confusion": self.scores.confusion.tolist(),
        }

    def explain(self, body: object) -> dict:
        """POST /api/explain, `body` the parsed JSON."""
        if not isinstance(body, dict):
            raise ApiError("the body must be a JSON object")
        given = [key for key in PICTURES if key in body]
        if len(given) != 1:
            raise ApiError(f"give exactly one picture: {', '.join(PICTURES)}")
        unknown = set(body) - {*PICTURES, "class", "name"}
        if unknown:
            raise ApiError(f"unknown field {min(unknown)!r}")
        pixels = read_picture(given[0], body[given[0]], body.get("name"))  # (D,) uint8
        k = class_index(body.get("class"), len(self.dataset.class_names))
        why = explain(self.exact, inputs(pixels[None], np.float64)[0], k)
        return {
            "pixels": pixels.tolist(),
            "output": why.output.tolist(),
            "logits": why.logits.tolist(),
            "top": int(why.logits.argmax()),
            "class": why.k,
            "gradient": why.gradient.tolist(),
            "contributions": why.contributions.tolist(),
            "rest": why.rest,
            "exact": why.exact,
        }

    def cell(self, query: dict[str, list[str]]) -> dict:
        """GET /api/cell?true=I&pred=J: the test images of true class I predicted as J, the
        most confident first for a mistake, the least confident first on the diagonal."""
        K = len(self.dataset.class_names)
        true, pred = (query_class(query, name, K) for name in ("true", "pred"))
        s = self.scores
        (index,) = np.nonzero((self.test.labels == true) & (s.predicted == pred))
        order = np.argsort(s.value[index], kind="stable")
        shown = index[order if true == pred else order[::-1]][:MAX_CELL]
        return {
            "true": true,
            "pred": pred,
            "count": len(index),
            "images": [
                {
                    "index": int(i),
                    "label": int(self.test.labels[i]),
                    "predicted": int(s.predicted[i]),
                    "value": float(s.value[i]),
                    "pixels": self.test.images[i].tolist(),
                }
                for i in shown
            ],
        }


def read_picture(key: str, value: object, name: object) -> np.ndarray:
    """The picture given under `key` as MNIST pixels (D,) uint8."""
    if key == "pixels":
        if not (
            isinstance(value, list)
            and len(value) == D
            and all(type(v) is int and 0 <= v <= 255 for v in value)
        ):
            raise ApiError(f"pixels must be a list of {D} integers from 0 to 255")
        return np.array(value, np.uint8)
    if key == "drawing":
        return read_drawing(value)
    if name is not None and not isinstance(name, str):
        raise ApiError("name must be a string (the image's file name)")
    return read_image(decode(value, "image"), name or "")


def decode(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise ApiError(f"{what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(f"{what} is not valid base64") from None


def read_drawing(value: object) -> np.ndarray:
    """{"width", "height", "grey"} -> preprocess(grey (h, w) uint8)."""
    if not isinstance(value, dict) or set(value) != {"width", "height", "grey"}:
        raise ApiError("drawing must be an object with width, height and grey")
    w, h = value["width"], value["height"]
    if not all(type(n) is int and 1 <= n <= MAX_SIDE for n in (w, h)):
        raise ApiError(
            f"drawing width and height must be integers from 1 to {MAX_SIDE}"
        )
    grey = decode(value["grey"], "drawing grey")
    if len(grey) != w * h:
        raise ApiError(
            f"drawing grey holds {len(grey)} bytes; width × height is {w * h}"
        )
    try:
        return preprocess(np.frombuffer(grey, np.uint8).reshape(h, w))  # (D,)
    except ImageError as e:
        raise ApiError(str(e)) from None


def read_image(data: bytes, name: str) -> np.ndarray:
    """A picture file's bytes -> predict.prepare, mnist-predict's reader and preprocessing,
    through a temporary file (the reader opens files by path, as the command does)."""
    suffix = Path(name).suffix.lower()
    with tempfile.TemporaryDirectory(prefix="mnist-serve-") as tmp:
        path = Path(tmp) / f"upload{suffix if suffix in SUFFIXES else ''}"
        path.write_bytes(data)
        try:
            return prepare(path)  # (D,)
        except ImageError as e:
            raise ApiError(str(e).replace(str(path), "the image")) from None
        except MissingExtraError as e:
            raise ApiError(str(e), status=501) from None


def class_index(value: object, K: int) -> int | None:
    if value is None:
        return None
    if type(value) is not int or not 0 <= value < K:
        raise ApiError(f"class must be an integer from 0 to {K - 1}")
    return value


def query_class(query: dict[str, list[str]], name: str, K: int) -> int:
    values = query.get(name, [])
    if len(values) != 1 or values[0] not in {str(k) for k in range(K)}:
        raise ApiError(f"{name} must be given once, a class from 0 to {K - 1}")
    return int(values[0])
