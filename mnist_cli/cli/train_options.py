"""The options of mnist-train about where the run goes and what it prints: --out, --force,
--resume, --quiet, --json (the settings of the run itself are config_options.py and
optimizer_options.py)."""

from pathlib import Path

import click

OUTPUT_OPTIONS = [
    click.option(
        "--out",
        "out_dir",
        type=click.Path(path_type=Path),
        help="Run directory to write, claimed before training (another run cannot use it "
        "meanwhile); not a symbolic link. Each epoch's checkpoint is written into it, so "
        "an interrupted run can be resumed. Default: runs/<model>-<UTC timestamp>-<random>/.",
    ),
    click.option(
        "--force",
        is_flag=True,
        help="Replace --out if it holds a previous run (and only a run's files), finished "
        "or interrupted.",
    ),
    click.option(
        "--resume",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        metavar="RUN",
        help="Go on from the last checkpoint of RUN (interrupted, or finished, to extend "
        "it with --epochs) with its own configuration, and finish it in place: its weights "
        "end bit for bit as if it had never stopped, its history and curves are one run's. "
        "Options that change the math are refused; --epochs N may extend it: the cosine "
        "schedule's T then becomes the longer run's, so the steps after the checkpoint "
        "follow the longer run's curve while those before followed the shorter's (the "
        "weights equal those of a run started with --epochs N when the schedule is "
        "constant, or N is the run's own epochs). --quiet, --json, --plots and the data "
        "options are free.",
    ),
    click.option(
        "-q", "--quiet", is_flag=True, help="No progress bars or epoch lines."
    ),
    click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print the metrics object as one JSON line on stdout, its last line; "
        "epoch and summary lines go to stderr.",
    ),
]


def output_options(command):
    """--out, --force, --resume, --quiet and --json, in that order in --help."""
    for option in reversed(OUTPUT_OPTIONS):
        command = option(command)
    return command
