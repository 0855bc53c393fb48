"""BLAS threads per phase (threads.py): one for the SGD steps and for scoring, every core for
the exact solver, nothing changed when the user set a count, and a CLI that starts numpy's BLAS
with one thread without leaving the variable behind."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import init_params
from threadpoolctl import threadpool_info

import mnist_cli.training.loop
import mnist_cli.training.run
import mnist_cli.training.step
from mnist_cli.config.settings import TrainConfig
from mnist_cli.data import MNIST, Split
from mnist_cli.fast import threads
from mnist_cli.nn.architecture import one_layer

pytestmark = pytest.mark.skipif(
    not [i for i in threadpool_info() if i["user_api"] == "blas"],
    reason="threadpoolctl finds no BLAS under numpy",
)


def blas_count() -> int:
    return next(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


@pytest.fixture
def no_user_choice(monkeypatch):
    for name in threads.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    "environ, chose",
    [
        ({}, False),
        ({"OPENBLAS_NUM_THREADS": "2"}, True),
        ({"OMP_NUM_THREADS": "1"}, True),
        ({"MKL_NUM_THREADS": "4"}, True),
        ({"OPENBLAS_NUM_THREADS": " "}, False),
        ({"OTHER_NUM_THREADS": "2"}, False),
    ],
)
def test_the_user_chooses_through_the_usual_variables(environ, chose):
    assert threads.user_chose(environ) is chose


@pytest.mark.parametrize("phase", ["sgd", "score", "solve"])
def test_a_phase_sets_its_count_and_restores_the_one_before(phase, no_user_choice):
    wanted = {"sgd": 1, "score": 1, "solve": os.cpu_count()}[phase]
    before = blas_count()
    with threads.blas_threads(phase):
        assert blas_count() == wanted, f"{phase}: {blas_count()} threads, not {wanted}"
    assert blas_count() == before


def test_the_users_count_is_left_alone(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    before = blas_count()
    with threads.blas_threads("sgd"), threads.blas_threads("solve"):
        assert blas_count() == before


def test_training_steps_and_scores_with_one_thread_and_solves_with_all(
    monkeypatch, no_user_choice
):
    """train() steps and scores its monitor, fit() scores and solves, each with its count."""
    seen: dict[str, set[int]] = {"step": set(), "score": set(), "solve": set()}

    def spy(name, function):
        def wrapper(*args, **kwargs):
            seen[name].add(blas_count())
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(
        mnist_cli.training.step,
        "gradients",
        spy("step", mnist_cli.training.step.gradients),
    )
    monkeypatch.setattr(
        mnist_cli.training.step, "score", spy("score", mnist_cli.training.step.score)
    )
    monkeypatch.setattr(
        mnist_cli.training.run, "score", spy("score", mnist_cli.training.run.score)
    )
    monkeypatch.setattr(
        mnist_cli.training.run,
        "least_squares",
        spy("solve", mnist_cli.training.run.least_squares),
    )
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (300, 784), dtype=np.uint8)
    split = Split(images, rng.integers(0, 10, 300).astype(np.uint8))
    for solver in ("sgd", "exact"):
        config = TrainConfig(
            epochs=2, solver=solver, model="linear" if solver == "exact" else "softmax"
        )
        start = one_layer(config.model, init_params("zeros", None))
        mnist_cli.training.run.fit(config, MNIST, split, split, start=start)
    assert seen == {"step": {1}, "score": {1}, "solve": {os.cpu_count()}}, seen


def test_the_cli_starts_the_blas_with_one_thread_and_leaves_no_variable():
    code = (
        "import json, os, mnist_cli.cli\n"
        "from threadpoolctl import threadpool_info\n"
        "blas = [i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas']\n"
        "print(json.dumps([blas, os.environ.get('OPENBLAS_NUM_THREADS')]))"
    )
    env = {k: v for k, v in os.environ.items() if k not in threads.THREAD_VARIABLES}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=e, stdout=subprocess.PIPE, text=True
        )
        for e in (env, {**env, "OPENBLAS_NUM_THREADS": "2"})
    ]
    (default, _), (chosen, _) = (p.communicate(timeout=60) for p in procs)
    assert json.loads(default) == [[1], None], default
    assert json.loads(chosen) == [[2], "2"], chosen
