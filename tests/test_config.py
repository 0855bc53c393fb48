"""Configuration: TOML files, validation, precedence, and the round trip through config.toml."""

import tomllib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mnist_cli.config.files import read_config_file, to_toml
from mnist_cli.config.resolve import check_val_size, resolve_run, start_path
from mnist_cli.config.settings import MODEL_DEFAULTS, TrainConfig, resolve
from mnist_cli.errors import ConfigError, OptionsError
from mnist_cli.nn import D, K
from mnist_cli.nn.architecture import one_layer
from mnist_cli.nn.layers import Params
from mnist_cli.rundir.weights import FORMAT_VERSION, Weights

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def write(tmp_path, text, name="run.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_builtin_defaults_equal_default_toml_but_its_bundled_mirror():
    from_file = resolve(read_config_file(CONFIGS / "default.toml"), {})
    builtin = resolve({}, {})
    assert from_file.mirrors[-1] == str((CONFIGS.parent / "data" / "mnist").resolve())
    assert from_file.mirrors[:-1] == (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    )
    assert {**from_file.__dict__, "mirrors": ()} == builtin.__dict__


@pytest.mark.parametrize("name", ["default", "softmax", "linear"])
def test_shipped_configs_resolve(name):
    config = resolve(read_config_file(CONFIGS / f"{name}.toml"), {})
    assert config.model == ("linear" if name == "linear" else "softmax")
    assert config.lr == MODEL_DEFAULTS[config.model]["lr"]


def test_precedence_option_over_file_over_model_default(tmp_path):
    path = write(tmp_path, 'model = "linear"\nepochs = 3\n')
    config = resolve(read_config_file(path), {"epochs": 7, "seed": None})
    assert (config.model, config.epochs, config.lr) == ("linear", 7, 0.005)
    assert config.seed == TrainConfig.seed


def test_model_option_picks_that_models_defaults():
    assert resolve({}, {"model": "linear"}).lr == 0.005
    assert resolve({"lr": 0.1}, {"model": "linear"}).lr == 0.1


@pytest.mark.parametrize(
    "text, message",
    [
        ("learning_rate = 0.1", "key 'learning_rate' unknown key"),
        (
            'epochs = "ten"',
            "key 'epochs' must be an integer from 1 to 10,000, not 'ten'",
        ),
        ("epochs = 0", "key 'epochs' must be an integer from 1 to 10,000, not 0"),
        ("batch_size = -5", "key 'batch_size' must be an integer ≥ 1"),
        ("lr = 0", "key 'lr' must be a finite number > 0, not 0"),
        ("lr = nan", "key 'lr' must be a finite number > 0, not nan"),
        ("lr = true", "key 'lr' must be a finite number > 0, not True"),
        (
            'model = "resnet"',
            "key 'model' must be one of linear, softmax, mlp, cnn, not 'resnet'",
        ),
        ('mirrors = "x"', "key 'mirrors' must be a list of strings"),
        ('mirrors = ["ftp://example.org/"]', "key 'mirrors'"),
        (
            'dataset = "cifar"',
            "key 'dataset' must be one of mnist, fashion-mnist, kmnist",
        ),
        ('solver = "adam"', "key 'solver' must be one of sgd, exact, not 'adam'"),
        ("l2 = -0.5", "key 'l2' must be a finite number ≥ 0, not -0.5"),
        ("l2 = inf", "key 'l2' must be a finite number ≥ 0, not inf"),
        ("val_size = -1", "key 'val_size' must be an integer ≥ 0, not -1"),
        ("val_size = 1.5", "key 'val_size' must be an integer ≥ 0, not 1.5"),
        ("init_from = 3", "key 'init_from' must be the path of a run directory"),
        ('init_from = ""', "key 'init_from' must be the path of a run directory"),
        ("epochs = ", "invalid TOML"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text + "\n")
    with pytest.raises(ConfigError) as e:
        read_config_file(path)
    assert str(e.value).startswith(f"{path}: "), str(e.value)
    assert message in str(e.value), f"expected {message!r} in {str(e.value)!r}"


def test_toml_syntax_error_gives_line(tmp_path):
    path = write(tmp_path, 'model = "softmax"\nepochs = = 3\n')
    with pytest.raises(ConfigError, match="line 2"):
        read_config_file(path)


def test_relative_mirror_is_relative_to_the_file(tmp_path):
    (tmp_path / "mirror").mkdir()
    sub = tmp_path / "configs"
    sub.mkdir()
    path = write(sub, 'mirrors = ["../mirror", "https://example.org/mnist"]\n')
    assert read_config_file(path)["mirrors"] == (
        str(tmp_path / "mirror"),
        "https://example.org/mnist/",
    )


def test_resolved_toml_reads_back_to_the_same_config(tmp_path):
    config = resolve({"mirrors": (str(tmp_path), 'https://x.org/"q"/')}, {"lr": 1e-05})
    text = to_toml(config)
    tomllib.loads(text)
    assert resolve(read_config_file(write(tmp_path, text)), {}) == config


def test_newer_keys_round_trip_and_init_from_is_relative_to_the_file(tmp_path):
    sub = tmp_path / "configs"
    sub.mkdir()
    path = write(
        sub,
        'dataset = "kmnist"\nsolver = "exact"\nmodel = "linear"\nl2 = 2\n'
        'val_size = 500\ninit_from = "../runs/a"\n',
    )
    values = read_config_file(path)
    assert values["init_from"] == str(tmp_path / "runs" / "a"), values["init_from"]
    assert values["l2"] == 2.0 and isinstance(values["l2"], float)
    config = resolve(values, {"val_size": None})
    assert (config.dataset, config.solver, config.val_size) == ("kmnist", "exact", 500)
    again = resolve(read_config_file(write(tmp_path, to_toml(config))), {})
    assert again == config, f"expected {config}, read back {again}"
    without = to_toml(resolve({}, {}))
    assert "init_from" not in without, f"None must be left out of TOML: {without}"
    assert resolve(read_config_file(write(tmp_path, without)), {}).init_from is None


# resolve.py: how the command line, a config file and the --init-from weights combine. An option
# not given is None, as click passes it.


def weights(kind="linear", dataset="kmnist"):
    params = Params(W=np.zeros((K, D), np.float32), b=np.zeros(K, np.float32))
    return Weights(one_layer(kind, params), dataset, FORMAT_VERSION).fixes(None)


def test_init_and_init_from_exclude_each_other():
    options = {"init": "normal", "init_from": "/runs/a"}
    with pytest.raises(
        OptionsError, match="^--init and --init-from exclude each other"
    ):
        start_path(options, {})
    with pytest.raises(
        OptionsError, match="^--init and --init-from exclude each other"
    ):
        resolve_run({}, options, weights())


def test_start_path_option_over_file_and_init_overrides_the_files_init_from():
    file_values = {"init_from": "/runs/file"}
    assert start_path({"init_from": None, "init": None}, file_values) == "/runs/file"
    assert (
        start_path({"init_from": "/runs/opt", "init": None}, file_values) == "/runs/opt"
    )
    assert start_path({"init_from": None, "init": "normal"}, file_values) is None
    config = resolve_run(file_values, {"init": "normal", "init_from": None})
    assert (config.init, config.init_from) == ("normal", None), config


def test_init_from_weights_imply_their_model_and_dataset():
    config = resolve_run({}, {"init_from": "/runs/a"}, weights("linear", "kmnist"))
    assert (config.model, config.dataset) == ("linear", "kmnist"), config
    assert config.lr == MODEL_DEFAULTS["linear"]["lr"], "the implied model's defaults"
    assert config.init_from == "/runs/a"


def test_a_run_continues_on_its_own_loss_unless_told_otherwise():
    start = weights("softmax", "mnist")
    options = {"init_from": "/runs/a"}
    assert (
        resolve_run({}, options, replace(start, loss="cross-entropy")).loss
        == "cross-entropy"
    )
    assert resolve_run({}, options, start).loss == "squared", "a bare weights file"
    given = {**options, "loss": "squared"}
    assert (
        resolve_run({}, given, replace(start, loss="cross-entropy")).loss == "squared"
    )
    from_file = resolve_run(
        {"loss": "squared"}, options, replace(start, loss="cross-entropy")
    )
    assert from_file.loss == "squared", "the config file's loss wins over the implied"


@pytest.mark.parametrize("where", ["option", "file"])
def test_weights_of_another_model_or_dataset_are_refused_not_overridden(where):
    for key, value, message in [
        (
            "model",
            "softmax",
            "the weights are a linear model, but this run trains softmax",
        ),
        ("dataset", "mnist", "were trained on kmnist, but this run trains on mnist"),
    ]:
        file_values = {key: value} if where == "file" else {}
        options = {"init_from": "/runs/a", key: value if where == "option" else None}
        with pytest.raises(ConfigError, match=message) as caught:
            resolve_run(file_values, options, weights("linear", "kmnist"))
        assert not isinstance(caught.value, OptionsError), "a mismatch exits 1, not 2"


def test_exact_solver_implies_linear_and_refuses_softmax():
    assert resolve_run({}, {"solver": "exact"}).model == "linear"
    assert resolve_run({"solver": "exact"}, {}).model == "linear"
    for file_values, options in [
        ({}, {"solver": "exact", "model": "softmax"}),
        ({"model": "softmax"}, {"solver": "exact"}),
    ]:
        with pytest.raises(OptionsError, match="^--solver exact needs --model linear"):
            resolve_run(file_values, options)


@pytest.mark.parametrize(
    "file_values, options, named",
    [
        ({}, {"epochs": 3}, "--epochs"),
        ({}, {"batch_size": 10, "lr": 0.1}, "--batch-size, --lr"),
        ({}, {"init": "zeros"}, "--init"),
        ({"init_from": "/runs/a"}, {}, "init_from"),
    ],
)
def test_exact_solver_refuses_what_only_sgd_uses(file_values, options, named):
    with pytest.raises(
        OptionsError, match=f"^{named} cannot be used with --solver exact"
    ):
        resolve_run(file_values, {"solver": "exact", **options})
    assert resolve_run({"epochs": 3}, {"solver": "exact"}).epochs == 3, (
        "a config file's epochs are not options given: exact ignores them"
    )


def test_l2_is_for_the_exact_solver_only():
    with pytest.raises(OptionsError, match="^--l2 is for --solver exact"):
        resolve_run({}, {"l2": 1.0})
    assert resolve_run({}, {"l2": 1.0, "solver": "exact"}).l2 == 1.0


def test_another_dataset_drops_the_files_mirrors_but_not_the_options():
    file_values = {"dataset": "mnist", "mirrors": ("/data/mnist",)}
    assert resolve_run(file_values, {}).mirrors == ("/data/mnist",)
    assert resolve_run(file_values, {"dataset": "mnist"}).mirrors == ("/data/mnist",)
    assert resolve_run(file_values, {"dataset": "kmnist"}).mirrors == ()
    assert resolve_run({"mirrors": ("/m",)}, {"dataset": "kmnist"}).mirrors == ()
    given = {"dataset": "kmnist", "mirrors": ("/data/kmnist",)}
    assert resolve_run(file_values, given).mirrors == ("/data/kmnist",)
    start = weights("linear", "kmnist")
    implied = resolve_run({"mirrors": ("/m",)}, {"init_from": "/a"}, start)
    assert implied.mirrors == (), "a dataset implied by the weights changes it too"


def test_val_size_must_leave_training_images():
    check_val_size(resolve_run({}, {"val_size": 999}), 1000)
    with pytest.raises(OptionsError) as caught:
        check_val_size(resolve_run({}, {"val_size": 1000}), 1000)
    assert (
        str(caught.value)
        == "must be less than the 1,000 training images of mnist, not 1000"
    )
    assert (caught.value.option, caught.value.key) == ("--val-size", "val_size")
