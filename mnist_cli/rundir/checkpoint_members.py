"""A checkpoint's members turned into values, each refused in one line naming the checkpoint
and the member (checkpoint.py reads the archive, npz.py checks it)."""

import json
from pathlib import Path

import numpy as np

from mnist_cli.errors import CheckpointError
from mnist_cli.rundir import generator_state


def utf8_bytes(s: str) -> np.ndarray:
    return np.frombuffer(s.encode(), np.uint8)


def read_text(path: Path, arrays: dict, name: str) -> str:
    try:
        return arrays[name].tobytes().decode()
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: {name} is not UTF-8 text") from None


def read_json(path: Path, arrays: dict, name: str):
    try:
        return json.loads(read_text(path, arrays, name))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: {name} is not JSON ({e})") from None


def read_count(path: Path, arrays: dict, name: str) -> int:
    value = int(arrays[name])
    if value < 0:
        raise CheckpointError(f"{path}: {name} is {value}, expected an integer ≥ 0")
    return value


def read_history(path: Path, history) -> list[dict]:
    if not isinstance(history, list) or not all(isinstance(e, dict) for e in history):
        raise CheckpointError(f"{path}: history is not a list of objects")
    return history


def read_rng_state(path: Path, state: object) -> dict:
    if not generator_state.is_pcg64_state(state):
        raise CheckpointError(f"{path}: rng is not the state of a PCG64 generator")
    return state
