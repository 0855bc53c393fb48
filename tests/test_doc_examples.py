"""The example outputs of README.md and docs/*.md cannot drift (issue 22): `make docs` writes
them by running them (docs/examples.py); here, the cheap ones are run again and compared, and
every page's examples are checked to run in order on a fresh clone (each run directory a
command reads is one an earlier example wrote, under the name that example printed)."""

import importlib.util
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from mnist_cli.cli import gradcheck_command

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RUN = re.compile(r"runs/(linear|softmax|mlp)-\d{8}-\d{6}-[0-9a-f]{6}")


def examples_module():
    spec = importlib.util.spec_from_file_location(
        "examples", ROOT / "docs" / "examples.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXAMPLES = examples_module()


def page_examples(page: Path) -> list[tuple[str, list[str]]]:
    """(command, the output shown) of every example of `page`, in reading order, those that
    make docs does not run included."""
    lines = page.read_text(encoding="utf-8").split("\n")
    found = []
    for first, end in EXAMPLES.blocks(lines, not_run=True):
        block = lines[first:end]
        starts = [i for i, line in enumerate(block) if line.startswith("$ ")]
        for start, stop in zip(starts, [*starts[1:], len(block)]):
            shown = [line for line in block[start + 1 : stop] if line]
            found.append((block[start][2:], shown))
    return found


def run_problems(examples: list[tuple[str, list[str]]]) -> list[str]:
    """What keeps `examples` (command, output shown) from running in order on a fresh clone:
    a run directory read before an example wrote it, or a name printed that the command
    would not write (not its --out or --resume, nor a default runs/<model>-<time>-<hex>)."""
    problems, written = [], set()
    for command, shown in examples:
        args = shlex.split(command)
        # the run a command writes: its --out, or the run --resume finishes in place
        into = [flag for flag in ("--out", "--resume") if flag in args]
        out = args[args.index(into[0]) + 1].rstrip("/") if into else None
        said = [m[1] for line in shown if (m := re.search(r"-> (runs/\S+?)/?$", line))]
        for run in said:
            if not (run == out or (out is None and DEFAULT_RUN.fullmatch(run))):
                problems.append(f"`{command}` printed that it wrote {run}")
        written.update(said)
        for arg in args:
            if (
                arg.startswith("runs/")
                and arg != out
                and arg.rstrip("/") not in written
            ):
                problems.append(
                    f"`{command}` reads {arg}, which no example before wrote"
                )
    return problems


@pytest.mark.parametrize("page", EXAMPLES.PAGES, ids=lambda p: p.name)
def test_each_example_reads_only_runs_an_earlier_one_wrote(page):
    problems = run_problems(page_examples(page))
    assert problems == [], f"{page.name}: {problems}"


def test_the_readme_examples_that_drifted_are_caught():
    """README's train example wrote runs/mlp-<time>-<hex>/ (its output, edited, said
    runs/mlp/), and the examples after it read runs/mlp."""
    train = "mnist-train --config configs/mlp.toml --plots"
    old = [(train, ["... -> runs/mlp/"]), ("mnist-eval runs/mlp", [])]
    assert run_problems(old) == [f"`{train}` printed that it wrote runs/mlp"]
    assert run_problems([("mnist-eval runs/mlp", [])]) == [
        "`mnist-eval runs/mlp` reads runs/mlp, which no example before wrote"
    ]


def gradcheck_examples() -> list[tuple[Path, str, list[str]]]:
    found = []
    for page in EXAMPLES.PAGES:
        lines = page.read_text(encoding="utf-8").split("\n")
        for first, end in EXAMPLES.blocks(lines):
            for command, head, tail in EXAMPLES.commands(lines[first:end]):
                if "mnist-gradcheck" in command:
                    found.append((page, command, head, tail))
    return found


@pytest.mark.parametrize(
    "page, command, head, tail",
    gradcheck_examples(),
    ids=lambda v: v.name if isinstance(v, Path) else None,
)
def test_the_gradcheck_examples_print_what_they_show(
    page, command, head, tail, mnist_cache, monkeypatch
):
    """Run again (deterministic: seed 0), on the session's cache of the bundled MNIST: the
    page shows what the command prints (docs/cli.md showed a 6-block layout of 21)."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("MNIST_CACHE_DIR", str(mnist_cache))
    args = shlex.split(command)[1:]
    if "--mirror" not in args:
        args += ["--mirror", "data/mnist"]
    result = CliRunner().invoke(gradcheck_command, args)
    printed = result.output.rstrip("\n").splitlines()
    lines = page.read_text(encoding="utf-8").split("\n")
    shown = next(
        lines[first:end]
        for first, end in EXAMPLES.blocks(lines)
        if f"$ {command}" in lines[first:end]
    )
    start = shown.index(f"$ {command}") + 1
    expected = EXAMPLES.shaped(printed, head, tail)
    assert shown[start : start + len(expected)] == expected, (
        f"{page.name}: `{command}` is stale: run `make docs`"
    )
