"""Thin pictures (issue 22): a picture within the 25-megapixel bound costs what a square one
does, whatever its shape (measured as the peak RSS of a subprocess), and a side longer than
the bound is refused from the header, in one line that gives the numbers that differ."""

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from mnist_cli.cli import predict_command
from mnist_cli.predict.pictures import MAX_SIDE, load_image

SEVEN = Path(__file__).resolve().parents[1] / "docs" / "img" / "digits" / "seven.png"
MAX_RSS_MB = 200  # a square 25 MP grey PNG: ~90 MB; a thin one was 1,042 MB

# the peak RSS of this process alone, in MB: VmHWM, as getrusage's ru_maxrss starts from the
# parent's peak (the pytest process's, at the fork)
PEAK_RSS = """
import re, sys
from mnist_cli.cli import predict_command
try:
    predict_command(sys.argv[1:])
finally:
    status = open("/proc/self/status").read()
    print(int(re.search(r"VmHWM:\\s+(\\d+) kB", status)[1]) // 1024, file=sys.stderr)
"""


def png_declaring(path: Path, width: int, height: int) -> None:
    """A 1 × 1 grey PNG whose header (IHDR, CRC recomputed) declares width × height."""
    Image.new("L", (1, 1), 255).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("width, height", [(1, 20_000_000), (12_500_000, 2)])
def test_a_side_longer_than_the_bound_is_refused_from_the_header(
    trained_runs, tmp_path, width, height
):
    """A 39 KB PNG of 1 × 20,000,000 cost 1.1 GB and 2 s (and showed no digit)."""
    path = tmp_path / "thin.png"
    png_declaring(path, width, height)
    run = trained_runs["softmax"][0]
    result = CliRunner().invoke(predict_command, [str(run), str(path)])
    assert result.exit_code == 1, result.output
    assert result.output == (
        f"Error: {path}: too long to read ({width} x {height} pixels; the longest side "
        f"a picture may have is {MAX_SIDE:,})\n"
    )


def test_a_thin_picture_within_the_bounds_costs_what_a_square_one_does(
    trained_runs, tmp_path
):
    """20,000 × 1,250 (25 MP, a 7 at one end): read reduced to at most READ_PIXELS, where
    the shorter side alone left it whole (1 GB); the peak RSS of mnist-predict on it, in a
    subprocess, stays within MAX_RSS_MB, and the digit is still read."""
    thin = Image.new("L", (MAX_SIDE, 1250), 255)
    thin.paste(Image.open(SEVEN).convert("L").resize((1250, 1250)), (0, 0))
    path = tmp_path / "thin.png"
    thin.save(path)
    run = trained_runs["softmax"][0]
    result = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, str(run), str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{path}: 7  probability"), result.stdout
    peak = int(result.stderr.splitlines()[-1])
    assert peak <= MAX_RSS_MB, f"peak RSS {peak} MB, more than {MAX_RSS_MB} MB"
    assert load_image(path).shape == (313, 5000)  # reduced 4 times: 1.6 MP
