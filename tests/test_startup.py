"""What each command imports: what it uses and nothing more.

A short command (mnist-eval on a run, mnist-predict on a picture) spends most of its time
starting: each one runs in a fresh process here and reports the modules it ended with.
matplotlib (--plots), Pillow (reading a picture), requests (a download) and tqdm (a progress
bar on a terminal) are imported only by the command and the moment that needs them, and a
command does not import the training loop, the plots or another command's module. Nor does
mnist-predict, which reads no dataset, import the data package's fetching code (only its
catalogue, for the class names), or numpy.ma (numpy.median and numpy.percentile would, ≈ 5 ms) or more of
Pillow's plugins than the picture's own (Image.init would import them all, ≈ 30 ms).
"""

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import init_params, save_run
from PIL import Image

from mnist_cli.nn.architecture import one_layer

EXTRAS = ("matplotlib", "PIL", "requests", "tqdm")
NUMPY = ("numpy.ma",)
# Pillow modules a picture of another format (or ImageOps: predict.upright turns photos)
# would pull in
PLUGINS = (
    "PIL.PngImagePlugin",
    "PIL.JpegImagePlugin",
    "PIL.EpsImagePlugin",
    "PIL.ImageOps",
)
OURS = (
    "mnist_cli.plots",
    "mnist_cli.training.loop",
    "mnist_cli.training.run",
    "mnist_cli.gradcheck.check",
    "mnist_cli.serve.server",  # mnist-serve's, imported by no other command
)
FETCHING = ("mnist_cli.data.cache", "mnist_cli.data.fetch", "mnist_cli.data.splits")
COMMANDS = (
    "mnist_eval",
    "mnist_gradcheck",
    "mnist_predict",
    "mnist_runs",
    "mnist_train",
)
WATCHED = (
    *EXTRAS,
    *NUMPY,
    *PLUGINS,
    *OURS,
    *FETCHING,
    *(f"mnist_cli.cli.{c}" for c in COMMANDS),
)

# runs `code` (which may call a command with `args`), then writes the watched modules it
# imported to the file argv[1]; the command's output goes to stdout/stderr, not to that file
PROBE = """
import json, sys
out, args = sys.argv[1], json.loads(sys.argv[2])
try:
{code}
finally:
    loaded = sorted(m for m in {watched!r} if m in sys.modules)
    open(out, "w").write(json.dumps(loaded))
"""


def command_call(name: str) -> str:
    """Code calling the console script `name` (e.g. "eval") as it does: its module alone."""
    return (
        f"    from mnist_cli.cli import {name}_command\n"
        f"    {name}_command.main(args, standalone_mode=False)"
    )


@pytest.fixture(scope="module")
def run_and_picture(tmp_path_factory, mnist_cache, mnist_server_url):
    """A saved softmax run (zero weights, no training needed), a 28×28 PNG and a JPEG."""
    root = tmp_path_factory.mktemp("startup")
    metrics = {"model": "softmax", "config": {"mirrors": [mnist_server_url]}}
    network = one_layer("softmax", init_params("zeros", None))
    save_run(root / "run", network=network, metrics=metrics, config_toml="")
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255  # a "1"
    Image.fromarray(digit).save(root / "digit.png")
    Image.fromarray(255 - digit).save(root / "photo.jpg")  # dark on light
    return root / "run", root / "digit.png"


def cases(run, picture, cache) -> dict[str, tuple[str, list[str]]]:
    """Each case: the code run in a fresh process, and the command's arguments."""
    data = ["--cache-dir", str(cache)]
    cases = {"import mnist_cli.cli": ("    import mnist_cli.cli", [])}
    for name in ("train", "eval", "predict", "gradcheck", "runs"):
        cases[f"mnist-{name} --help"] = (command_call(name), ["--help"])
    cases["mnist-eval RUN"] = (command_call("eval"), [str(run), "--json", *data])
    cases["mnist-predict RUN IMAGE"] = (
        command_call("predict"),
        [str(run), str(picture)],
    )
    cases["mnist-predict RUN PHOTO"] = (
        command_call("predict"),
        [str(run), str(picture.with_name("photo.jpg"))],
    )
    cases["mnist-runs DIR"] = (command_call("runs"), [str(run.parent)])
    return cases


# the watched modules each case may import; every other is a failure
ALLOWED = {
    "import mnist_cli.cli": set(),
    "mnist-train --help": {
        "mnist_cli.cli.mnist_train",
        "mnist_cli.training.run",
        "mnist_cli.training.loop",
        *FETCHING,
    },
    "mnist-eval --help": {"mnist_cli.cli.mnist_eval", *FETCHING},
    "mnist-predict --help": {"mnist_cli.cli.mnist_predict"},
    "mnist-gradcheck --help": {
        "mnist_cli.cli.mnist_gradcheck",
        "mnist_cli.gradcheck.check",
        *FETCHING,
    },
    "mnist-runs --help": {"mnist_cli.cli.mnist_runs"},
    "mnist-eval RUN": {"mnist_cli.cli.mnist_eval", *FETCHING},
    "mnist-predict RUN IMAGE": {
        "mnist_cli.cli.mnist_predict",
        "PIL",
        "PIL.PngImagePlugin",
    },
    "mnist-predict RUN PHOTO": {
        "mnist_cli.cli.mnist_predict",
        "PIL",
        "PIL.JpegImagePlugin",
    },
    "mnist-runs DIR": {"mnist_cli.cli.mnist_runs"},
}


def test_each_command_imports_only_what_it_uses(run_and_picture, mnist_cache, tmp_path):
    run, picture = run_and_picture
    todo = cases(run, picture, mnist_cache)
    assert set(todo) == set(ALLOWED)
    procs = {}  # all at once: each is mostly start-up, waiting on its imports
    for i, (case, (code, args)) in enumerate(todo.items()):
        probe = PROBE.format(code=code, watched=WATCHED)
        out = tmp_path / f"{i}.json"
        cmd = [sys.executable, "-c", probe, str(out), json.dumps(args)]
        procs[case] = (subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True), out)
    stdout = {}
    for case, (proc, out) in procs.items():
        stdout[case], _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, f"{case}: exit {proc.returncode}"
        imported = set(json.loads(out.read_text()))
        assert imported == ALLOWED[case], (
            f"{case} imported {sorted(imported)}, expected {sorted(ALLOWED[case])}"
        )
    # the commands really ran: eval scored the test split, predict read the picture
    assert json.loads(stdout["mnist-eval RUN"])["split"] == "test"
    assert stdout["mnist-predict RUN IMAGE"].startswith(f"{picture}: ")
    assert stdout["mnist-predict RUN PHOTO"].startswith(f"{picture.parent}/photo.jpg: ")


def test_the_probe_sees_an_import(tmp_path):
    """The probe can fail: code that imports tqdm is reported with it."""
    probe = PROBE.format(code="    import tqdm", watched=WATCHED)
    out = tmp_path / "imported.json"
    subprocess.run([sys.executable, "-c", probe, str(out), "[]"], check=True)
    assert json.loads(out.read_text()) == ["tqdm"]
