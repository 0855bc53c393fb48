"""The mlp's and the loss's settings: config keys, the rules of resolve.py, and the options of
mnist-train, each bad value a usage error (exit 2) naming the option or the key. No data is
loaded: every refusal happens before."""

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import init_layers

from mnist_cli.cli import train_command
from mnist_cli.config.choices import MAX_HIDDEN_LAYERS, MAX_UNITS
from mnist_cli.config.files import read_config_file, to_toml
from mnist_cli.config.models import Start
from mnist_cli.config.resolve import resolve_run
from mnist_cli.config.settings import MODEL_DEFAULTS, resolve
from mnist_cli.errors import ConfigError, OptionsError
from mnist_cli.nn.architecture import from_dense
from mnist_cli.rundir.weights import FORMAT_VERSION, Weights

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def write(tmp_path, text):
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def test_mlp_defaults_one_relu_layer_of_256_from_the_scaled_normal():
    config = resolve({}, {"model": "mlp"})
    assert (config.hidden, config.activation, config.init) == ((256,), "relu", "normal")
    assert (config.loss, config.lr) == ("squared", MODEL_DEFAULTS["mlp"]["lr"])
    softmax = resolve({}, {})
    assert (softmax.hidden, softmax.activation) == ((), None), "no hidden layers"


def test_shipped_mlp_config_is_the_cross_entropy_recipe():
    config = resolve(read_config_file(CONFIGS / "mlp.toml"), {})
    assert (config.model, config.hidden, config.activation) == ("mlp", (256,), "relu")
    assert (config.loss, config.epochs, config.seed) == ("cross-entropy", 10, 0)


def test_an_mlp_config_round_trips_through_config_toml(tmp_path):
    config = resolve(
        {}, {"model": "mlp", "hidden": (256, 128), "loss": "cross-entropy"}
    )
    text = to_toml(config)
    assert "hidden = [256, 128]\n" in text and 'activation = "relu"\n' in text, text
    assert resolve(read_config_file(write(tmp_path, text)), {}) == config
    softmax = to_toml(resolve({}, {}))
    assert "hidden" not in softmax and "activation" not in softmax, softmax


@pytest.mark.parametrize(
    "text, message",
    [
        ("hidden = [0]", "key 'hidden' must be a list of 1 to 4 layer widths"),
        ("hidden = [-3]", "not -3 in [-3]"),
        (f"hidden = [{MAX_UNITS + 1}]", f"each from 1 to {MAX_UNITS}"),
        ("hidden = [256.0]", "not 256.0"),
        ('hidden = ["256"]', "not '256'"),
        ("hidden = 256", "not 256"),
        ("hidden = []", "not []"),
        (f"hidden = {[8] * (MAX_HIDDEN_LAYERS + 1)}", "a list of 1 to 4 layer widths"),
        ('activation = "gelu"', "key 'activation' must be one of relu, sigmoid, tanh"),
        ('loss = "hinge"', "key 'loss' must be one of squared, cross-entropy"),
    ],
)
def test_bad_mlp_keys_name_the_file_and_the_key(tmp_path, text, message):
    path = write(tmp_path, text + "\n")
    with pytest.raises(ConfigError) as e:
        read_config_file(path)
    assert str(e.value).startswith(f"{path}: "), str(e.value)
    assert message in str(e.value), f"expected {message!r} in {str(e.value)!r}"


@pytest.mark.parametrize(
    "file_values, options, message",
    [
        (
            {},
            {"loss": "cross-entropy", "model": "linear"},
            "^--loss cross-entropy needs",
        ),
        ({"loss": "cross-entropy"}, {"solver": "exact"}, "^the config key loss cross"),
        ({}, {"hidden": (64,)}, "^--hidden is for --model mlp"),
        ({}, {"activation": "tanh", "model": "linear"}, "^--activation is for --model"),
        ({"hidden": (64,)}, {}, "^the config key hidden is for --model mlp"),
        ({}, {"model": "mlp", "init": "zeros"}, "^--init zeros cannot train an mlp"),
        ({"model": "mlp", "init": "zeros"}, {}, "every hidden unit would get the same"),
        (
            {},
            {"model": "mlp", "solver": "exact"},
            "^--solver exact needs --model linear",
        ),
    ],
)
def test_settings_the_model_cannot_use_are_usage_errors(file_values, options, message):
    with pytest.raises(OptionsError, match=message):
        resolve_run(file_values, options)


def mlp_weights(hidden=(16,), activation="tanh") -> Start:
    layers = init_layers((784, *hidden, 10), activation, np.random.default_rng(0))
    weights = Weights(from_dense("mlp", layers, activation), "mnist", FORMAT_VERSION)
    return weights.fixes(None)


def test_init_from_mlp_weights_implies_their_architecture():
    config = resolve_run({}, {"init_from": "/runs/a"}, mlp_weights((16, 8)))
    assert (config.model, config.hidden, config.activation) == ("mlp", (16, 8), "tanh")


@pytest.mark.parametrize(
    "options, theirs, ours",
    [
        ({"hidden": (32,)}, "mlp 784-16-10 tanh", "mlp 784-32-10 tanh"),
        ({"activation": "relu"}, "mlp 784-16-10 tanh", "mlp 784-16-10 relu"),
    ],
)
def test_init_from_another_architecture_names_both(options, theirs, ours):
    with pytest.raises(ConfigError) as e:
        resolve_run({}, {"init_from": "/runs/a", **options}, mlp_weights())
    assert not isinstance(e.value, OptionsError), "a mismatch exits 1, like the model's"
    expected = f"the weights are an {theirs}, but this run trains an {ours}"
    assert expected in str(e.value), str(e.value)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--hidden", "0"], "Invalid value for '--hidden'"),
        (["--hidden", "-5"], "not -5"),
        (["--hidden", "256,x"], "not '256,x'"),
        (["--hidden", "1.5"], "integers) separated by commas"),
        (["--hidden", str(MAX_UNITS + 1)], f"each from 1 to {MAX_UNITS}"),
        (["--hidden", "8,8,8,8,8"], "a list of 1 to 4 layer widths"),
        (["--loss", "hinge"], "Invalid value for '--loss'"),
        (["--activation", "gelu"], "Invalid value for '--activation'"),
        (["--model", "softmax", "--hidden", "64"], "--hidden is for --model mlp"),
        (["--activation", "relu"], "--activation is for --model mlp"),
        (["--model", "linear", "--loss", "cross-entropy"], "needs a softmax output"),
        (["--model", "mlp", "--init", "zeros"], "would get the same gradient"),
    ],
)
def test_bad_mlp_options_exit_2_naming_the_option(tmp_path, args, message):
    result = CliRunner().invoke(train_command, [*args, "--out", str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "r").exists()
