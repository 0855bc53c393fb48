"""Configuration: TOML files, validation, precedence, and the round trip through config.toml."""

import tomllib
from pathlib import Path

import pytest

from mnist_cli.config import (
    MODEL_DEFAULTS,
    TrainConfig,
    read_config_file,
    resolve,
    to_toml,
)
from mnist_cli.errors import ConfigError

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
        ('epochs = "ten"', "key 'epochs' must be an integer ≥ 1, not 'ten'"),
        ("epochs = 0", "key 'epochs' must be an integer ≥ 1, not 0"),
        ("batch_size = -5", "key 'batch_size' must be an integer ≥ 1"),
        ("lr = 0", "key 'lr' must be a finite number > 0, not 0"),
        ("lr = nan", "key 'lr' must be a finite number > 0, not nan"),
        ("lr = true", "key 'lr' must be a finite number > 0, not True"),
        ('model = "cnn"', "key 'model' must be one of linear, softmax, not 'cnn'"),
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
