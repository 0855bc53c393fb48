"""`mnist-predict`: saved weights applied to the user's own pictures (predict/: pictures.py, preprocess.py)."""

import json
from pathlib import Path

import click
import numpy as np

from mnist_cli.cli.common import command, weights_dataset
from mnist_cli.cli.options import dataset_option
from mnist_cli.errors import shown
from mnist_cli.predict.images import VALUE_NAMES, as_text, classify, prepare
from mnist_cli.rundir.weights import load_weights


@command(
    epilog="""\b
Example:
  mnist-predict runs/softmax-20261126-101500 my-seven.png photo-of-a-3.jpg
  mnist-predict runs/linear-try/weights.npz digits/*.png --json
  mnist-predict runs/softmax-20261126-101500 my-seven.png --show
""",
)
@click.argument(
    "weights", metavar="RUN_OR_WEIGHTS", type=click.Path(exists=True, path_type=Path)
)
@click.argument(
    "images",
    metavar="IMAGE...",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False),
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object per image, a line each: image, digit, and probability "
    "(softmax, mlp) or score (linear).",
)
@click.option(
    "--show",
    is_flag=True,
    help="Also print each picture as the model sees it (28×28 after preprocessing), as "
    "text; not with --json.",
)
@dataset_option(
    "The dataset whose class names to show. Default: the one the weights were trained on "
    "(any other is an error)."
)
def predict_command(weights, images, as_json, show, dataset):
    """Classify pictures of handwritten digits: PNG, JPEG and more, any colours, either polarity.

    Each IMAGE is made an MNIST digit as MNIST itself was made: grey, inverted if the digit is
    dark on light paper, cropped to the digit, scaled into a 20×20 box and centred by centre of
    mass in 28×28. Prints the predicted digit and its probability (softmax and mlp models) or
    score (linear model). Every image is read before any is classified, so a bad one stops the
    command with nothing printed. Needs Pillow: `make dev` installs it.
    """
    if show and as_json:
        raise click.UsageError(
            "--show prints pictures as text; it cannot go with --json"
        )
    saved = load_weights(weights)
    names = weights_dataset(weights, saved, dataset).class_names
    pixels = np.stack([prepare(image) for image in images])  # (N, D) uint8
    digits, values = classify(saved.network, pixels)  # (N,), (N,)
    value_name = VALUE_NAMES[saved.kind]
    for i, (image, digit, value) in enumerate(
        zip(images, digits.tolist(), values.tolist())
    ):
        if as_json:
            line = {"image": shown(image), "digit": digit, value_name: value}
            click.echo(json.dumps(line, allow_nan=False))
        else:
            click.echo(f"{shown(image)}: {names[digit]}  {value_name} {value:.4f}")
        if show:
            click.echo(as_text(pixels[i]))
