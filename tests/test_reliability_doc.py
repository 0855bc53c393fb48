"""docs/reliability.md cannot drift: every test it names exists, and every row names one."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"
REFERENCE = re.compile(r"`(tests/\w+\.py)::(test_\w+)`")


def defined_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_every_test_named_in_reliability_md_exists():
    references = REFERENCE.findall(DOC.read_text())
    assert len(references) >= 40, (
        f"expected the table's references, found {len(references)}"
    )
    missing = [
        f"{file}::{name}"
        for file, name in references
        if not (ROOT / file).is_file() or name not in defined_functions(ROOT / file)
    ]
    assert missing == [], (
        f"docs/reliability.md names tests that do not exist: {missing}"
    )


def test_every_row_names_a_test():
    rows = [
        line
        for line in DOC.read_text().splitlines()
        if line.startswith("| ") and not line.startswith("| fault or bad input")
    ]
    assert len(rows) >= 30, f"expected the table rows, found {len(rows)}"
    bare = [row[:60] for row in rows if not REFERENCE.search(row.rsplit("|", 2)[-2])]
    assert bare == [], f"rows without a test in their last column: {bare}"
