"""More MNIST-format datasets: the catalogue, and --dataset end to end on a tiny fake
Fashion-MNIST written by the test, gzipped, and pinned by the md5 of its .gz files (as the real
one is), served by a local HTTP server."""

import gzip
import hashlib
import json

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import write_idx

from mnist_cli.cli import (
    eval_command,
    gradcheck_command,
    predict_command,
    train_command,
)
from mnist_cli.data import catalogue
from mnist_cli.data.catalogue import DATASETS, FASHION_MNIST, KMNIST, MNIST, get_dataset

FILE_NAMES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


def test_catalogue_has_the_three_datasets_with_their_published_checksums():
    assert list(DATASETS) == ["mnist", "fashion-mnist", "kmnist"]
    expected = {
        "fashion-mnist": [
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79",
            "bb300cfdad3c16e7a12a480ee83cd310",
        ],
        "kmnist": [
            "bdb82020997e1d708af4cf47b453dcf7",
            "e144d726b3acfaa3e44228e80efcd344",
            "5c965bf0a639b31b8f53240b1b52f4d7",
            "7320c461ea6c1c855c0b718fb2a4b134",
        ],
    }
    for dataset in (FASHION_MNIST, KMNIST):
        files = dataset.files
        assert [f.name for f in files] == FILE_NAMES, [f.name for f in files]
        assert [f.checksum for f in files] == expected[dataset.name]
        assert all(f.algorithm == "md5" and f.of_gzip for f in files), files
        assert len(dataset.class_names) == 10 and dataset.mirrors[0].startswith("http")
    assert FASHION_MNIST.mirrors[0] == (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    )
    assert KMNIST.mirrors[0] == "http://codh.rois.ac.jp/kmnist/dataset/kmnist/"
    assert FASHION_MNIST.class_names[0] == "T-shirt/top"
    assert FASHION_MNIST.class_names[9] == "Ankle boot"
    assert KMNIST.class_names == (
        "o",
        "ki",
        "su",
        "tsu",
        "na",
        "ha",
        "ma",
        "ya",
        "re",
        "wo",
    )
    assert get_dataset("mnist") is MNIST
    with pytest.raises(
        ValueError, match="unknown dataset 'cifar'.*mnist, fashion-mnist"
    ):
        get_dataset("cifar")


def fake_split(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n 28x28 images of 10 easy classes: class k lights rows 2k+4 and 2k+5, plus noise."""
    labels = (np.arange(n) % 10).astype(np.uint8)
    images = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
    for i, k in enumerate(labels):
        images[i, 2 * k + 4 : 2 * k + 6, 4:24] = 255
    return images, labels


@pytest.fixture(scope="module")
def fake_fashion_files(tmp_path_factory) -> dict[str, bytes]:
    """The four .gz files of a 60 + 20 image fake Fashion-MNIST, by name."""
    rng = np.random.default_rng(0)
    arrays = [*fake_split(60, rng), *fake_split(20, rng)]
    folder = tmp_path_factory.mktemp("fake-fashion")
    files = {}
    for name, array in zip(FILE_NAMES, arrays):
        write_idx(folder / name, array)
        files[f"{name}.gz"] = gzip.compress((folder / name).read_bytes(), mtime=0)
    return files


@pytest.fixture
def fake_fashion(fake_fashion_files, http_server, monkeypatch, tmp_path):
    """The catalogue's "fashion-mnist" replaced by the fake one: same class names, md5 of the
    .gz files computed here, and the local server as its only (built-in) mirror."""
    served = tmp_path / "served"
    served.mkdir()
    for name, data in fake_fashion_files.items():
        (served / name).write_bytes(data)
    server = http_server(served)
    md5 = {n: hashlib.md5(d).hexdigest() for n, d in fake_fashion_files.items()}
    files = [
        catalogue.DataFile(name, md5[f"{name}.gz"], algorithm="md5", of_gzip=True)
        for name in FILE_NAMES
    ]
    fake = catalogue.Dataset(
        "fashion-mnist",
        *files,
        mirrors=(server.url,),
        class_names=FASHION_MNIST.class_names,
    )
    monkeypatch.setitem(DATASETS, "fashion-mnist", fake)
    return server


def test_train_and_eval_on_fashion_mnist(fake_fashion, tmp_path):
    cache = tmp_path / "cache"
    run = tmp_path / "run"
    args = ["--dataset", "fashion-mnist", "--cache-dir", str(cache), "--out", str(run)]
    result = CliRunner().invoke(
        train_command, [*args, "--epochs", "20", "--batch-size", "10"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith("epoch 1/20  loss ")
    assert sorted(fake_fashion.paths) == sorted(f"/{n}.gz" for n in FILE_NAMES)
    cached = sorted(p.name for p in (cache / "fashion-mnist").glob("*-ubyte"))
    assert cached == sorted(FILE_NAMES), f"expected the cache per dataset, got {cached}"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["dataset"] == "fashion-mnist" and metrics["config"]["dataset"] == (
        "fashion-mnist"
    )
    assert metrics["class_names"] == list(FASHION_MNIST.class_names)
    assert metrics["test_accuracy"] >= 0.9, f"the fake classes are easy: {metrics}"
    assert metrics["data"]["t10k-labels-idx1-ubyte"] == {
        "md5": DATASETS["fashion-mnist"].test_labels.checksum
    }

    shown = CliRunner().invoke(eval_command, [str(run), "--cache-dir", str(cache)])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    acc = 100 * metrics["test_accuracy"]
    assert lines[0] == f"softmax on fashion-mnist test (20 images): accuracy {acc:.2f}%"
    for k, name in enumerate(FASHION_MNIST.class_names):
        assert lines[3 + k].startswith(f"{k} {name} "), (
            f"row {k}: expected {name!r}, got {lines[3 + k]!r}"
        )
    assert len(fake_fashion.paths) == 4, "mnist-eval should read the warm cache only"


@pytest.fixture
def fashion_run(fake_fashion, tmp_path):
    """(run directory, cache args) of a one-epoch softmax run on the fake Fashion-MNIST."""
    run = tmp_path / "run"
    base = ["--cache-dir", str(tmp_path / "cache")]
    trained = CliRunner().invoke(
        train_command,
        [*base, "--dataset", "fashion-mnist", "--epochs", "1", "--out", str(run)],
    )
    assert trained.exit_code == 0, trained.output
    return run, base


def test_eval_refuses_a_dataset_the_weights_were_not_trained_on(fashion_run):
    run, base = fashion_run
    result = CliRunner().invoke(eval_command, [str(run), *base, "--dataset", "mnist"])
    assert result.exit_code == 1, result.output
    assert result.output == (
        f"Error: {run} was trained on fashion-mnist, not mnist; "
        "drop --dataset or give --dataset fashion-mnist\n"
    )
    same = CliRunner().invoke(
        eval_command, [str(run), *base, "--dataset", "fashion-mnist", "--json"]
    )
    assert same.exit_code == 0, same.output
    assert json.loads(same.output)["dataset"] == "fashion-mnist"


def test_predict_names_the_classes_and_refuses_another_dataset(fashion_run, tmp_path):
    from PIL import Image

    run, _ = fashion_run
    picture = np.zeros((28, 28), np.uint8)
    picture[8:20, 6:22] = 255
    Image.fromarray(picture).save(tmp_path / "block.png")
    image = str(tmp_path / "block.png")
    as_json = CliRunner().invoke(predict_command, [str(run), image, "--json"])
    digit = json.loads(as_json.output)["digit"]
    result = CliRunner().invoke(predict_command, [str(run), image])
    assert result.exit_code == 0, result.output
    name = FASHION_MNIST.class_names[digit]
    assert result.output.startswith(f"{image}: {name}  probability "), result.output
    wrong = CliRunner().invoke(predict_command, [str(run), image, "--dataset", "mnist"])
    assert wrong.exit_code == 1
    assert wrong.output == (
        f"Error: {run} was trained on fashion-mnist, not mnist; "
        "drop --dataset or give --dataset fashion-mnist\n"
    )


def test_gradcheck_runs_on_the_chosen_dataset(fake_fashion, tmp_path):
    args = ["--dataset", "fashion-mnist", "--samples", "50", "--model", "all"]
    result = CliRunner().invoke(
        gradcheck_command, [*args, "--cache-dir", str(tmp_path / "cache")]
    )
    assert result.exit_code == 0, result.output
    assert "50 fashion-mnist training images" in result.output, result.output
    assert sorted(fake_fashion.paths) == [f"/{n}.gz" for n in FILE_NAMES[:2]]


def test_a_recompressed_gz_fails_the_md5_and_is_not_cached(fake_fashion, tmp_path):
    """The published md5 covers the .gz bytes: the same content gzipped again (another mtime
    in its header) is refused, and nothing enters the cache."""
    name = "train-labels-idx1-ubyte.gz"
    content = gzip.decompress((tmp_path / "served" / name).read_bytes())
    fake_fashion.routes[f"/{name}"] = (200, gzip.compress(content, mtime=12345))
    cache = tmp_path / "cache"
    result = CliRunner().invoke(
        train_command,
        [
            "--dataset",
            "fashion-mnist",
            "--cache-dir",
            str(cache),
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code == 1, result.output
    assert result.output.startswith(
        "Error: could not fetch train-labels-idx1-ubyte from any mirror"
    ), result.output
    assert "checksum mismatch" in result.output, result.output
    assert not (cache / "fashion-mnist" / "train-labels-idx1-ubyte").exists()
    assert not (tmp_path / "r").exists()


def test_init_from_weights_of_another_dataset_is_one_line_error(fake_fashion, tmp_path):
    base = ["--cache-dir", str(tmp_path / "cache"), "--epochs", "1"]
    run = tmp_path / "fashion"
    trained = CliRunner().invoke(
        train_command, [*base, "--dataset", "fashion-mnist", "--out", str(run)]
    )
    assert trained.exit_code == 0, trained.output
    result = CliRunner().invoke(
        train_command, [*base, "--init-from", str(run), "--dataset", "mnist"]
    )
    assert result.exit_code == 1, result.output
    assert result.output == (
        f"Error: --init-from {run}: the weights were trained on fashion-mnist, but this "
        "run trains on mnist; use --dataset fashion-mnist or other weights\n"
    )


def test_a_config_files_mirrors_are_not_used_for_another_dataset(
    fake_fashion, tmp_path, mnist_dir
):
    """configs/*.toml list the bundled MNIST copy as a mirror: with --dataset fashion-mnist
    they would only fail the checksums, so the dataset's own mirrors are used instead."""
    config = tmp_path / "mnist.toml"
    config.write_text(f'mirrors = ["{mnist_dir}"]\nepochs = 1\n')
    run = tmp_path / "run"
    result = CliRunner().invoke(
        train_command,
        [
            *("--config", str(config), "--dataset", "fashion-mnist"),
            *("--cache-dir", str(tmp_path / "cache"), "--out", str(run), "-q"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(fake_fashion.paths) == 4, (
        f"expected the fake's mirror: {fake_fashion.paths}"
    )
    recorded = json.loads((run / "metrics.json").read_text())["config"]["mirrors"]
    assert recorded == [], f"expected the built-in mirrors ([]), got {recorded}"
    # the same when the dataset is implied by --init-from weights trained on fashion-mnist
    again = tmp_path / "again"
    result = CliRunner().invoke(
        train_command,
        [
            *("--config", str(config), "--init-from", str(run)),
            *("--cache-dir", str(tmp_path / "cache2"), "--out", str(again), "-q"),
        ],
    )
    assert result.exit_code == 0, result.output
    m = json.loads((again / "metrics.json").read_text())
    assert m["dataset"] == "fashion-mnist", m["dataset"]


def test_weights_of_an_unknown_dataset_are_one_line_error(tmp_path):
    weights = tmp_path / "w.npz"
    np.savez(
        weights,
        W=np.zeros((10, 784), np.float32),
        b=np.zeros(10, np.float32),
        model=np.array("linear"),
        dataset=np.array("cifar10"),
    )
    result = CliRunner().invoke(eval_command, [str(weights)])
    assert result.exit_code == 1, result.output
    assert result.output == (
        f"Error: {weights}: trained on unknown dataset 'cifar10' (this mnist-cli knows "
        "mnist, fashion-mnist, kmnist); upgrade mnist-cli\n"
    )


def test_an_mlp_trains_and_scores_on_another_dataset(fake_fashion, tmp_path):
    cache, run = ["--cache-dir", str(tmp_path / "cache")], tmp_path / "run"
    args = ["--dataset", "fashion-mnist", "--model", "mlp", "--hidden", "8"]
    more = ["--loss", "cross-entropy", "--epochs", "20", "--batch-size", "10"]
    result = CliRunner().invoke(
        train_command, [*args, *more, *cache, "--out", str(run)]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["dataset"], metrics["model"]) == ("fashion-mnist", "mlp")
    assert metrics["test_accuracy"] >= 0.9, f"the fake classes are easy: {metrics}"
    shown = CliRunner().invoke(eval_command, [str(run), *cache])
    acc = 100 * metrics["test_accuracy"]
    assert shown.output.splitlines()[0] == (
        f"mlp 784-8-10 relu on fashion-mnist test (20 images): accuracy {acc:.2f}%"
    ), shown.output
