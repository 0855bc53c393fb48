"""`mnist-serve RUN`: one line with the address, one line for each thing that can go wrong
(a port in use, an address this machine lacks, an unreadable run), a warning for a host the
network can reach, and a clean stop on Ctrl-C."""

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest
from click.testing import CliRunner

from mnist_cli.cli import serve_command
from mnist_cli.serve.server import Server


def test_a_port_in_use_is_one_line(trained_runs, data_args):
    run, _ = trained_runs["softmax"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            serve_command, [str(run), "--port", str(port), *data_args]
        )
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"Error: cannot listen on 127.0.0.1:{port}: the port is in use by another "
        "program; choose another --port (0 picks a free one)"
    )


def test_an_address_this_machine_lacks_is_one_line(trained_runs, data_args):
    run, _ = trained_runs["softmax"]
    args = [str(run), "--host", "192.0.2.1", "--port", "0", *data_args]  # TEST-NET-1
    result = CliRunner().invoke(serve_command, args)
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        "Error: cannot listen on 192.0.2.1:0: this machine has no such address; "
        "choose another --host"
    )


def test_an_unreadable_run_is_one_line(tmp_path, data_args):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(serve_command, [str(empty), *data_args])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {empty}/weights.npz: no such file; give a run directory or a weights.npz\n"
    )
    broken = tmp_path / "weights.npz"
    broken.write_bytes(b"not a zip")
    result = CliRunner().invoke(serve_command, [str(broken), *data_args])
    assert result.exit_code == 1
    assert (
        result.output.startswith(f"Error: {broken}") and result.output.count("\n") == 1
    )


def test_a_host_the_network_reaches_is_warned_and_ctrl_c_stops(
    trained_runs, data_args, monkeypatch
):
    run, _ = trained_runs["softmax"]
    bound = []

    def interrupted(self, poll_interval):
        bound.append(self.server_address[1])
        raise KeyboardInterrupt

    monkeypatch.setattr(Server, "serve_forever", interrupted)
    args = [str(run), "--host", "0.0.0.0", "--port", "0", *data_args]
    result = CliRunner().invoke(serve_command, args)
    url = f"http://0.0.0.0:{bound[0]}/"
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"Warning: {url} is reachable from the network, not only this machine",
        f"serving softmax (mnist, test accuracy 92.71%) at {url}  (Ctrl-C stops)",
        "stopped",
    ]


def test_the_command_serves_until_ctrl_c(trained_runs, data_args):
    """The real thing: a process that prints one line, answers, logs with --verbose, and
    stops on SIGINT with exit 0 and nothing more than "stopped"."""
    run, _ = trained_runs["softmax"]
    command = [sys.executable, "-m", "mnist_cli", "serve", str(run), "--port", "0"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [*command, "--verbose", *data_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = process.stdout.readline()
        url = line.split(" at ")[1].split()[0]
        with urllib.request.urlopen(url + "api/model", timeout=10) as response:
            assert json.load(response)["model"] == "softmax"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0
    assert line.startswith(
        "serving softmax (mnist, test accuracy 92.71%) at http://127.0.0.1:"
    )
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 2 and lines[1] == "stopped", err
    assert '"GET /api/model HTTP/1.1" 200' in lines[0]


@pytest.mark.parametrize("port", ["-1", "65536", "http"])
def test_a_bad_port_is_a_usage_error(trained_runs, port):
    run, _ = trained_runs["softmax"]
    result = CliRunner().invoke(serve_command, [str(run), "--port", port])
    assert result.exit_code == 2
    assert "Invalid value for '--port'" in result.output
