"""`mnist-serve`: a run's model behind a local page (mnist_cli/serve/): draw, see, and see why."""

import webbrowser
from pathlib import Path

import click

from mnist_cli.cli.common import command, warn, weights_dataset
from mnist_cli.cli.mnist_eval import run_mirrors  # the run's own mirrors, as mnist-eval
from mnist_cli.cli.options import data_options
from mnist_cli.data import load_split
from mnist_cli.errors import ServeError
from mnist_cli.fast.threads import blas_threads
from mnist_cli.nn.architecture import describe
from mnist_cli.rundir.weights import load_weights
from mnist_cli.serve.api import Api
from mnist_cli.serve.server import make_server


@command(
    epilog="""\b
Example:
  mnist-serve runs/mlp
  mnist-serve runs/softmax-20261126-101500 --port 8080 --open
""",
)
@click.argument("run", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    help="The port to listen on; 0 picks a free one (the line printed says which). "
    "Default: 8000.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    help="The address to listen on. One that is not a loopback address (such as 0.0.0.0) "
    "makes the page reachable from the network, with a warning. Default: 127.0.0.1, this "
    "machine only.",
)
@click.option(
    "--open", "open_browser", is_flag=True, help="Open the page in the default browser."
)
@click.option("--verbose", is_flag=True, help="Print a line per request (to stderr).")
@data_options
@click.option("-q", "--quiet", is_flag=True, help="No download progress bars.")
def serve_command(run, port, host, open_browser, verbose, source, quiet):
    """Serve a page where you draw a digit and watch the model of RUN decide, and why.

    The page shows what the model sees (your drawing or picture made MNIST-like, as
    mnist-predict does), its probabilities, and a heat map of each pixel's contribution to
    a class, computed by the model's own backward pass; and the run's confusion matrix on
    the test split, whose cells open their images. RUN is a run directory or a weights.npz.
    Stop it with Ctrl-C.
    """
    weights = load_weights(run)
    dataset = weights_dataset(run, weights, None)
    mirrors = source.chosen_mirrors() or run_mirrors(run)
    test = source.load(load_split, dataset, "test", mirrors=mirrors, quiet=quiet)
    # one BLAS thread: for the scoring, and for each request's small products
    with blas_threads("score"):
        api = Api.load(weights.network, dataset, test)
        serve(api, host, port, open_browser, verbose)


def serve(api: Api, host: str, port: int, open_browser: bool, verbose: bool) -> None:
    """Listen, print the address, serve until Ctrl-C."""
    log = (lambda line: click.echo(line, err=True)) if verbose else None
    try:
        server = make_server(api, host, port, log=log, on_error=warn)
    except ServeError as e:
        advice = {
            "port": "choose another --port (0 picks a free one)",
            "host": "choose another --host",
        }[e.about]
        raise ServeError(f"{e}; {advice}", e.about) from None
    try:
        if not server.loopback:
            warn(f"{server.url} is reachable from the network, not only this machine")
        click.echo(
            f"serving {describe(api.network)} ({api.dataset.name}, test accuracy "
            f"{100 * api.scores.accuracy:.2f}%) at {server.url}  (Ctrl-C stops)"
        )
        if open_browser and not webbrowser.open(server.url):
            warn(f"no browser could be opened; open {server.url}")
        server.serve_forever(poll_interval=0.25)
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    finally:
        server.server_close()
