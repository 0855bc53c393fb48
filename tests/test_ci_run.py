"""What `bash .ci/run` does before `make test`: Chromium for the browser tests, installed with
apt-get when it is missing and CI runs as root; otherwise one line, and the tests skip.

Run with a PATH of stand-ins (id, apt-get, make, maybe chromium) that record their calls."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BASH = "/bin/bash"


def ci_run(tmp_path: Path, uid: int, chromium: bool) -> tuple[str, list[str]]:
    """(what .ci/run printed, the stand-ins' calls in order)."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    calls.touch()
    tools = {
        "id": f"echo {uid}",
        "apt-get": f'echo "apt-get $*" >> {calls}',
        "make": f'echo "make $*" >> {calls}',
    }
    if chromium:
        tools["chromium"] = "exit 0"
    for name, body in tools.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    (bin_dir / "dirname").symlink_to(shutil.which("dirname"))  # the real one
    out = subprocess.run(
        [BASH, str(ROOT / ".ci" / "run")],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout + out.stderr, calls.read_text().splitlines()


@pytest.mark.skipif(not Path(BASH).exists(), reason="no /bin/bash")
def test_ci_installs_chromium_as_root_when_it_is_missing(tmp_path):
    out, calls = ci_run(tmp_path, uid=0, chromium=False)
    assert calls == [
        "apt-get update -qq",
        "apt-get install -y -qq chromium",
        "make test",
    ]
    assert (
        out == "installing chromium for the browser tests: apt-get install chromium\n"
    )


@pytest.mark.skipif(not Path(BASH).exists(), reason="no /bin/bash")
def test_ci_without_root_says_the_browser_tests_will_skip(tmp_path):
    out, calls = ci_run(tmp_path, uid=1000, chromium=False)
    assert calls == ["make test"]
    assert out == (
        "chromium is missing and this is not root: the browser tests will be skipped "
        "(as root: apt-get install -y chromium)\n"
    )


@pytest.mark.skipif(not Path(BASH).exists(), reason="no /bin/bash")
def test_ci_with_chromium_just_tests(tmp_path):
    out, calls = ci_run(tmp_path, uid=0, chromium=True)
    assert (out, calls) == ("", ["make test"])
