"""The import arrows of the package point one way: each part imports only the parts below it
in LAYERS (and itself), so a reader can learn the package bottom up and nothing below the CLI
depends on what is above it. The test reads every import statement, also those inside
functions (imported late for start-up time) and under TYPE_CHECKING."""

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mnist_cli"

# lowest first; a part is a top-level module or folder of mnist_cli
LAYERS = [
    {
        "__init__",
        "errors",
        "atomic",
    },  # the version, typed errors, whole-or-nothing files
    {"data"},  # the dataset's files into arrays
    {"config"},  # the names a user picks, and the run's settings
    {"nn", "optim"},  # the reference math; the optimizers
    {"metrics"},  # scores of predicted labels
    {"fast"},  # the fused path, scoring, batches, threads
    {"gradcheck", "predict", "training"},  # checks, pictures, training runs
    {"rundir"},  # run directories: claims, formats, records, listing
    {"plots"},  # pictures of a run
    {"cli", "serve", "__main__", "console"},  # the commands, and their entry points
]
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def part_of(module: str) -> str:
    """mnist_cli.nn.layers -> nn; mnist_cli -> __init__."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "__init__"


def imports(path: Path) -> set[str]:
    """The mnist_cli modules `path` imports (names imported from the package itself count as
    modules: `from mnist_cli import plots`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "mnist_cli":
                found |= {f"mnist_cli.{alias.name}" for alias in node.names}
            elif node.module.startswith("mnist_cli."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("mnist_cli")}
    return found


def backward_imports() -> list[str]:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        here = relative.parts[0].removesuffix(".py")
        for module in sorted(imports(path)):
            there = part_of(module)
            if there == "__version__":
                there = "__init__"
            if RANK.get(there, -1) > RANK[here]:
                wrong.append(f"{relative} ({here}) imports {module} ({there})")
    return wrong


def test_every_part_has_a_layer():
    parts = {p.name.removesuffix(".py") for p in PACKAGE.iterdir()}
    parts = {p for p in parts if p != "__pycache__" and not p.startswith(".")}
    assert parts <= set(RANK), f"no layer for {sorted(parts - set(RANK))}"


def test_no_part_imports_a_part_above_it():
    wrong = backward_imports()
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_the_check_sees_a_backward_import(tmp_path, monkeypatch):
    """A module of nn/ importing the training loop is caught (the test can fail)."""
    fake = tmp_path / "mnist_cli"
    (fake / "nn").mkdir(parents=True)
    (fake / "nn" / "bad.py").write_text("from mnist_cli.training.loop import train\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    assert backward_imports() == [
        "nn/bad.py (nn) imports mnist_cli.training.loop (training)"
    ]


def test_every_module_reads_in_one_sitting():
    """No module over 250 lines; a command's module (cli/) over 150."""
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        bound = 150 if path.parent.name == "cli" else 250
        if lines > bound:
            long.append(f"{path.relative_to(PACKAGE)}: {lines} lines (at most {bound})")
    assert not long, "\n".join(long)


# the parts whose words are the options themselves: the commands, and config/ (options and
# config keys → one TrainConfig, its messages name both); rundir/resumable.py builds the
# `mnist-train --resume RUN` command that mnist-runs reports
SPEAKS_OPTIONS = {"cli", "config", "__main__", "console"}
COMMAND_TEXT = {"rundir/resumable.py"}
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z-]+")


def texts(tree: ast.AST) -> list[ast.Constant]:
    """The string constants of `tree` that are not docstrings (messages, not documentation)."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_the_library_names_no_option_the_cli_does():
    """A library error says what is wrong with which thing; the command that took the option
    names it (cli/run_place.py, cli/source.py, OptionsError's option and key)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if part_of(f"mnist_cli.{relative[:-3].replace('/', '.')}") in SPEAKS_OPTIONS:
            continue
        if relative in COMMAND_TEXT:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in texts(tree):
            if OPTION.search(node.value) and not OPTION.fullmatch(node.value):
                found.append(f"{relative}:{node.lineno}: {node.value[:60]!r}")
    assert not found, "\n".join(found)
