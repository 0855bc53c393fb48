"""docs/derivations.md: every function it names exists, its numbers match the code, and its
math is balanced for GitHub's renderer."""

import importlib
import re
from pathlib import Path

import numpy as np

from mnist_cli.nn.losses import softmax_backward

DOC = Path(__file__).resolve().parents[1] / "docs" / "derivations.md"
NAMED = re.compile(r"`(mnist_cli(?:\.\w+)+)`")


def resolve(dotted: str) -> object | None:
    """The object a dotted path such as mnist_cli.models.softmax names, or None: the longest
    importable module prefix, then attributes."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        module_name = ".".join(parts[:split])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name is not None and module_name.startswith(e.name):
                continue  # this prefix is not a module: try a shorter one
            raise
        for attr in parts[split:]:
            obj = getattr(obj, attr, None)
        return obj
    return None


def test_every_function_named_in_the_derivations_exists():
    names = sorted(set(NAMED.findall(DOC.read_text(encoding="utf-8"))))
    assert len(names) >= 15, f"only {len(names)} functions named: {names}"
    missing = [name for name in names if not callable(resolve(name))]
    assert missing == [], f"named in {DOC.name} but not in the package: {missing}"


def test_resolve_finds_functions_and_rejects_what_is_not_there():
    assert resolve("mnist_cli.nn.losses.softmax_backward") is softmax_backward
    assert resolve("mnist_cli.nn.losses.no_such_function") is None
    assert resolve("mnist_cli.no_such_module.f") is None


def test_the_worked_softmax_example():
    """Section 5: S = (0.5, 0.3, 0.2), g = e₁ gives S ⊙ (g − ⟨g, S⟩) = (0.25, −0.15, −0.10),
    column 1 of J = diag(S) − SSᵀ, whose columns sum to 0."""
    S = np.array([[0.5, 0.3, 0.2]])
    J = np.diag(S[0]) - np.outer(S[0], S[0])
    expected_J = [[0.25, -0.15, -0.10], [-0.15, 0.21, -0.06], [-0.10, -0.06, 0.16]]
    np.testing.assert_allclose(
        J, expected_J, atol=1e-15, err_msg="the 3x3 J in the doc"
    )
    np.testing.assert_allclose(J.sum(axis=0), 0, atol=1e-15, err_msg="column sums")
    got = softmax_backward(S, np.array([[1.0, 0.0, 0.0]]))[0]
    np.testing.assert_allclose(got, [0.25, -0.15, -0.10], atol=1e-15)


def test_67_pixels_are_black_in_every_training_image(mnist_splits):
    """Section 8's reason why the normal equations are singular."""
    images = mnist_splits[0].images
    black = int((~(images != 0).any(axis=0)).sum())
    assert black == 67, f"{black} always-black pixels, the doc says 67"


def test_math_delimiters_are_balanced():
    """An odd $ makes GitHub render the rest of a paragraph as garbage."""
    text = DOC.read_text(encoding="utf-8")
    blocks = text.split("$$")
    assert len(blocks) % 2 == 1, "an unclosed $$ display block"
    for prose in blocks[::2]:
        for paragraph in prose.split("\n\n"):
            code_free = re.sub(r"`[^`]*`", "", paragraph)
            assert code_free.count("$") % 2 == 0, (
                f"unbalanced $ in: {paragraph[:120]!r}"
            )


def test_no_control_characters_in_the_docs():
    """A TeX command written through a non-raw Python string loses its backslash: \\tilde
    becomes a tab and 'ilde', \\frac a form feed and 'rac'. No Markdown file holds any."""
    root = DOC.parents[1]
    docs = [root / "README.md", *root.glob("docs/*.md"), *root.glob("*/README.md")]
    assert len(docs) >= 4, f"expected the README and docs, found {docs}"
    for path in docs:
        text = path.read_text(encoding="utf-8")
        bad = sorted({hex(ord(ch)) for ch in text if ord(ch) < 32 and ch != "\n"})
        assert bad == [], f"{path.relative_to(root)} holds control characters {bad}"
