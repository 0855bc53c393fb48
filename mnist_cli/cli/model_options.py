"""The options of mnist-train that choose the model and its loss (--model … --loss), each value
checked as the config file's would be; which go with which model is resolve.py's to say."""

import click

from mnist_cli.cli.checked import channel_counts, config_option, hidden_widths
from mnist_cli.config.choices import (
    ACTIVATIONS,
    KINDS,
    LOSSES,
    MAX_BLOCKS,
    MAX_CHANNELS,
    MAX_HIDDEN_LAYERS,
    MAX_UNITS,
)

# In the order --help lists them.
MODEL_OPTIONS = [
    click.option(
        "--model",
        type=click.Choice(KINDS),
        help="linear: ŷ = Wx + b;  softmax: ŷ = softmax(Wx + b);  mlp: hidden layers "
        "(--hidden, --activation), then a softmax;  cnn: convolution blocks (--channels, "
        "--kernel), dense layers (--hidden), a softmax. Default: softmax.",
    ),
    click.option(
        "--hidden",
        callback=hidden_widths,
        metavar="N[,N...]",
        help=f"The hidden layer widths of an mlp or of a cnn's dense part, input side first: "
        f"256, or 256,128 for two (1 to {MAX_HIDDEN_LAYERS} layers of 1 to {MAX_UNITS} units). "
        "Default: 256 (cnn: 128).",
    ),
    click.option(
        "--activation",
        type=click.Choice(ACTIVATIONS),
        help="The mlp's hidden units: relu max(0, z), sigmoid 1/(1 + e^−z) or tanh. "
        "Default: relu.",
    ),
    click.option(
        "--channels",
        callback=channel_counts,
        metavar="C[,C...]",
        help=f"The cnn's blocks, one per entry: a k×k convolution with C output channels, "
        f"relu, a 2×2 max-pool (1 to {MAX_BLOCKS} blocks of 1 to {MAX_CHANNELS} channels). "
        "Default: 16,32.",
    ),
    config_option(
        "--kernel", int, "The cnn's convolution size k (k×k, stride 1). Default: 5."
    ),
    click.option(
        "--loss",
        type=click.Choice(LOSSES),
        help="squared: (1/B) Σ ‖ŷ − y‖²;  cross-entropy: −(1/B) Σ log ŷ of the true class "
        "(softmax and mlp only). Default: squared.",
    ),
]
