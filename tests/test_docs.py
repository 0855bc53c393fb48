"""The documentation cannot drift: docs/cli.md's option reference is what `--help` prints, every
relative link of every Markdown file resolves, and `make help` says what the README says."""

import importlib.util
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKDOWN = sorted(
    p
    for p in ROOT.rglob("*.md")
    if not {".venv", ".git", ".pytest_cache"} & set(p.parts)
)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def generator():
    spec = importlib.util.spec_from_file_location(
        "generate_cli_md", ROOT / "docs" / "generate_cli_md.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_md_is_what_the_commands_print():
    gen = generator()
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert gen.render(page) == page, "docs/cli.md is stale: run `make docs`"


def test_the_reference_holds_every_option_of_every_command():
    from mnist_cli.__main__ import COMMANDS

    reference = generator().reference()
    for name, command in COMMANDS.items():
        assert f"### mnist-{name}" in reference
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("-"):
                    assert opt in reference, (
                        f"mnist-{name} {opt} missing from docs/cli.md"
                    )


def test_a_stale_reference_is_caught():
    gen = generator()
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    stale = page.replace("--epochs", "--epoch", 1)
    assert gen.render(stale) != stale


def relative_links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    targets = [a or b for a, b in LINK.findall(text)]
    return [t for t in targets if not re.match(r"[a-z]+:|#", t)]


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path):
    missing = [
        t for t in relative_links(path) if not (path.parent / t.split("#")[0]).exists()
    ]
    assert not missing, f"{path.relative_to(ROOT)}: links to nothing: {missing}"


def test_the_link_check_can_fail(tmp_path):
    page = tmp_path / "x.md"
    page.write_text(
        "see [this](nowhere.md) and ![pic](img/none.png) and [web](https://a.b)"
    )
    assert relative_links(page) == ["nowhere.md", "img/none.png"]


def make_help() -> str:
    """What `make help` prints, as a user's top-level make (not a sub-make of make test)."""
    return subprocess.run(
        ["make", "-s", "--no-print-directory", "help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_make_help_lists_what_the_readme_names():
    out = make_help()
    targets = re.findall(r"make (\w[\w-]*)", out)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for target in ("train", "test", "bench", "docs"):
        assert target in targets, f"make help does not list {target}"
        assert f"make {target}" in readme, f"README does not show make {target}"


def test_one_style_for_defaults_in_every_help():
    reference = generator().reference()
    assert "[default:" not in reference, "use 'Default: X.' in the help sentence"
    assert "a mnist-cli" not in reference
    assert "pip install 'mnist-cli[" not in reference, "the package is not on an index"


def test_make_help_and_the_readme_agree_on_the_bench_time_and_the_dev_extras():
    out = make_help()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    minutes = re.search(r"~(\d+) min", out).group(1)
    assert f"about {minutes} minutes" in readme.replace("three", "3"), minutes
    for extra in ("pytest", "ruff", "matplotlib", "Pillow"):
        assert extra in out.split("make dev")[1].splitlines()[0], extra


def test_the_readme_map_names_every_module():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## How the code is laid out", 1)[1].split("```")[1]
    names = set(re.findall(r"[a-z_]+", block))
    package = ROOT / "mnist_cli"
    modules = {p.stem for p in package.glob("*/*.py") if p.parent.name != "cli"}
    modules |= {p.stem for p in package.glob("*.py")}
    modules -= {"__init__"}
    folders = {p.name for p in package.iterdir() if (p / "__init__.py").exists()}
    missing = sorted(modules - names) + [
        f"{f}/" for f in sorted(folders) if f"{f}/" not in block
    ]
    assert not missing, f"README's map does not name {missing}"
