"""`make bench`: every contender in its own subprocess, a table, and bench/results.json.

Epoch times are medians over epochs; the ratios compare numbers measured in the same run (a
floor epoch right after each epoch of our trainer, in one process; the ratio is the median of
the pairs' ratios), because the machine is shared.
The mlp (784-256-10 relu, batch 100) has its own floor, the five products of a batch, paired
with its epochs the same way, as are its momentum and Adam rows (their cost over sgd is the
ratio of the two rows' ratios). bench/tricks.py measures each trick of the fast path against
the code without it. Each contender runs with 1 BLAS/OpenMP thread, and the floors, our
trainers and PyTorch also with the default (one thread per core). Peak RSS is each subprocess's own, from os.wait4.
See bench/README.md for what each row is.
"""

import argparse
import compileall
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from itertools import product
from pathlib import Path

from report import TARGETS, summary, table

BENCH = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
MIRROR = BENCH.parent / "data" / "mnist"
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
SWEEP = (32, 1000, 60000)  # batch sizes besides 100 (the softmax row)


def spawn(cmd: list, threads: int | None = 1) -> tuple[dict | None, float, float]:
    """Run `cmd` with `threads` BLAS/OpenMP threads (None: the default, one per core).
    Return its last stdout line as JSON (or None), its own peak RSS in MB, and its wall time."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env.update({var: str(threads) for var in THREAD_VARS} if threads else {})
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(c) for c in cmd], stdout=subprocess.PIPE, text=True, env=env
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's rusage, not all children's
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(map(str, cmd))} exited {proc.returncode}")
    lines = out.strip().splitlines()
    data = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
    return data, usage.ru_maxrss / 1024, wall  # ru_maxrss is in KiB on Linux


def worker(
    name: str, cache: Path, *args, threads: int | None = 1
) -> tuple[dict, float]:
    cmd = [sys.executable, BENCH / "workers.py", name, "--cache", cache, *args]
    data, rss, _ = spawn(cmd, threads)
    return data, rss


def label(name: str, threads: int | None) -> str:
    """ "softmax (1 thread)" with OPENBLAS/OMP_NUM_THREADS=1; "softmax (default threads)"
    with neither set: numpy's one per core for the floor, mnist-cli's choice for ours."""
    if threads is None:
        return f"{name} (default threads)"
    return f"{name} ({threads} thread{'s' * (threads > 1)})"


def trainer_rows(
    cache: Path, tmp: Path, epochs: int, threads: int | None, sweep: tuple[int, ...]
) -> dict:
    """Floor, softmax, linear (and softmax at the `sweep` batch sizes) interleaved; the peak
    RSS of the floor alone, of the real mnist-train command, and of each sweep batch size."""
    parts = ("softmax step only", "gather + cast only") if sweep else ()
    only = ",".join(
        ["floor", "softmax", "linear", *parts, *(f"batch {b}" for b in sweep)]
    )
    rows, _ = worker(
        "interleaved", cache, "--epochs", epochs, "--only", only, threads=threads
    )
    _, rows["floor"]["rss_mb"] = worker(
        "interleaved", cache, "--epochs", 1, "--only", "floor", threads=threads
    )
    for kind in ("softmax", "linear"):
        cmd = [
            BIN / "mnist-train",
            "--model",
            kind,
            "-q",
            "--force",
            "--out",
            tmp / kind,
        ]
        _, rss, wall = spawn([*cmd, "--cache-dir", cache, "--mirror", MIRROR], threads)
        rows[kind].update(rss_mb=rss, cli_seconds=wall)
    for batch_size in sweep:
        args = ("--epochs", 1, "--batch-size", batch_size)
        _, rows[f"batch {batch_size}"]["rss_mb"] = worker(
            "sweep", cache, *args, threads=threads
        )
    return {label(k, threads): {**v, "threads": threads} for k, v in rows.items()}


# --- the whole command, start-up, BLAS threads (issue 14) -----------------------------------


def spawn_usage(cmd: list, env_threads: int | None) -> tuple[float, float, float]:
    """Run `cmd` with OPENBLAS/OMP_NUM_THREADS = `env_threads`, or neither set (None: what a
    user gets, threads chosen by mnist-cli); its wall and CPU seconds (user + system, its own
    os.wait4 rusage: every thread of it) and peak RSS in MB."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env.update({var: str(env_threads) for var in THREAD_VARS} if env_threads else {})
    start = time.perf_counter()
    proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench: {' '.join(map(str, cmd))} failed")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def train_cmd(cache: Path, out: Path, epochs: int = 10) -> list:
    """`mnist-train --epochs N --quiet` (softmax, the default config) on the warm cache."""
    return [BIN / "mnist-train", "--epochs", epochs, "--quiet", "--force", "--out", out,
            "--cache-dir", cache, "--mirror", MIRROR]  # fmt: skip


BARE = [
    sys.executable,
    "-c",
    "import numpy",
]  # a bare numpy process: the start-up floor


def end_to_end(cache: Path, tmp: Path, rounds: int = 7, epochs: int = 10) -> dict:
    """`mnist-train --epochs 10 --quiet` as a user runs it (no thread variable set) against
    the floor of the whole job: a bare `python -c "import numpy"` plus 10 floor epochs with
    one BLAS thread (workers.py, the floor row's epochs). Each round runs the bare start, the
    command's imports alone (a process that imports mnist_cli.cli.mnist_train), the floor
    and the command one after the other; the ratio is the
    median of the rounds' ratios. The breakdown (workers.py breakdown: the command in one
    process, its phases timed) is the median of `rounds` runs, phase by phase."""
    # everything mnist-train imports before it trains: the command module, which imports the
    # run, the training loop and the artifacts
    imports = [sys.executable, "-c", "import mnist_cli.cli.mnist_train"]
    runs: dict[str, list[float]] = {
        k: [] for k in ("bare", "imports", "floor", "wall", "cpu")
    }
    for _ in range(rounds):
        runs["bare"].append(spawn_usage(BARE, None)[0])
        runs["imports"].append(spawn_usage(imports, None)[0])
        floor, _ = worker("interleaved", cache, "--epochs", epochs, "--only", "floor")
        runs["floor"].append(sum(floor["floor"]["epoch_seconds"]))
        wall, cpu, _ = spawn_usage(train_cmd(cache, tmp / "end-to-end", epochs), None)
        runs["wall"].append(wall)
        runs["cpu"].append(cpu)
    ratios = [w / (b + f) for w, b, f in zip(runs["wall"], runs["bare"], runs["floor"])]
    parts = [
        worker(
            "breakdown", cache, "--epochs", epochs, "--out", tmp / "bd", threads=None
        )
        for _ in range(rounds)
    ]
    phases = {
        name: statistics.median(p[0]["breakdown"]["phases"][name] for p in parts)
        for name in parts[0][0]["breakdown"]["phases"]
    }
    sgd = phases["SGD"]
    return {
        "epochs": epochs,
        "rounds": {k: v for k, v in runs.items()},
        "wall": statistics.median(runs["wall"]),
        "cpu": statistics.median(runs["cpu"]),
        "floor": statistics.median(b + f for b, f in zip(runs["bare"], runs["floor"])),
        "ratio": statistics.median(ratios),
        "breakdown": {
            "start-up (imports)": statistics.median(runs["imports"]),
            **phases,
        },
        "scoring_vs_sgd": phases["scoring"] / sgd if sgd else None,
        # the monitor's scorer, all epochs, mostly in its own thread beside the steps
        "monitor_seconds": statistics.median(
            p[0]["breakdown"]["monitor"] for p in parts
        ),
        "checkpoint_seconds": statistics.median(
            p[0]["breakdown"].get("checkpoints", 0.0) for p in parts
        ),
    }


def threads_table(cache: Path, tmp: Path, rounds: int = 6) -> dict:
    """`mnist-train --epochs 10 --quiet` with no thread variable (mnist-cli chooses), with
    OPENBLAS_NUM_THREADS=1 and with 2, in alternation (each first in turn): median wall and
    CPU of each, and the median of the paired wall ratios to the default."""
    variants = {"default": None, "1 thread": 1, "2 threads": 2}
    runs: dict[str, list[tuple[float, float, float]]] = {k: [] for k in variants}
    names = list(variants)
    for i in range(rounds):
        for name in names[i % 3 :] + names[: i % 3]:  # each variant first in turn
            runs[name].append(
                spawn_usage(train_cmd(cache, tmp / "threads"), variants[name])
            )
    return {
        name: {
            "wall": statistics.median(r[0] for r in rs),
            "cpu": statistics.median(r[1] for r in rs),
            "wall_vs_default": statistics.median(
                a[0] / b[0] for a, b in zip(rs, runs["default"])
            ),
        }
        for name, rs in runs.items()
    }


def startup(cache: Path, tmp: Path, rounds: int = 15) -> dict:
    """`mnist-eval RUN --json` and `mnist-predict RUN IMAGE`, whole processes, against a bare
    `python -c "import numpy"`, in alternation: the medians of the paired ratios."""
    from PIL import Image  # the dev extra

    from mnist_cli.data import MNIST, load_split

    test = load_split(MNIST, "test", cache, [str(MIRROR)])
    picture = tmp / "digit.png"
    Image.fromarray(255 - test.images[0].reshape(28, 28)).save(picture)  # dark on light
    run = tmp / "softmax"  # trained by trainer_rows
    cmds = {
        "mnist-eval RUN --json": [
            BIN / "mnist-eval",
            run,
            "--json",
            "--cache-dir",
            cache,
        ],
        "mnist-predict RUN IMAGE": [BIN / "mnist-predict", run, picture],
    }
    if (tmp / "cnn" / "weights.npz").exists():  # trained by cnn()
        cmds["mnist-predict CNN_RUN IMAGE"] = [
            BIN / "mnist-predict",
            tmp / "cnn",
            picture,
        ]
    runs: dict[str, list[float]] = {"bare": [], **{k: [] for k in cmds}}
    for _ in range(rounds):
        runs["bare"].append(spawn_usage(BARE, None)[0])
        for name, cmd in cmds.items():
            runs[name].append(spawn_usage(cmd, None)[0])
    return {
        name: {
            "wall": statistics.median(runs[name]),
            "vs_bare_numpy": statistics.median(
                a / b for a, b in zip(runs[name], runs["bare"])
            ),
        }
        for name in runs
    }


def mlp_rows(cache: Path, tmp: Path, epochs: int, threads: int | None) -> dict:
    """The mlp floor and our mlp with each loss, interleaved; with 1 thread also with momentum
    and Adam, our mlp step alone, and the peak RSS of mnist-train --config configs/mlp.toml."""
    only = ["mlp cross-entropy", "mlp squared"]
    if threads == 1:
        only += ["mlp momentum", "mlp adam", "mlp step only"]
    rows, _ = worker(
        "mlp", cache, "--epochs", epochs, "--only", ",".join(only), threads=threads
    )
    if threads == 1:
        command = [
            BIN / "mnist-train",
            "--config",
            BENCH.parent / "configs" / "mlp.toml",
            "-q",
        ]
        command += ["--out", tmp / "mlp", "--force"]
        _, rss, wall = spawn(
            [*command, "--cache-dir", cache, "--mirror", MIRROR], threads
        )
        rows["mlp cross-entropy"].update(rss_mb=rss, cli_seconds=wall)
    return {label(k, threads): {**v, "threads": threads} for k, v in rows.items()}


def machine() -> dict:
    import numpy

    cpuinfo = Path("/proc/cpuinfo")
    models = [
        line.split(":", 1)[1].strip()
        for line in (cpuinfo.read_text().splitlines() if cpuinfo.exists() else [])
        if line.startswith("model name")
    ]
    return {
        "cores": os.cpu_count(),
        "cpu": models[0] if models else platform.processor(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "load_average": os.getloadavg(),
    }


def lazy_imports() -> dict:
    """What `import mnist_cli.cli` costs and pulls in, from python -X importtime."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import mnist_cli.cli"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    lines = [line.split("|") for line in err.splitlines() if line.count("|") == 2]
    roots = {cells[2].strip().split(".")[0] for cells in lines}
    total = [int(c[1]) for c in lines if c[2].strip() == "mnist_cli.cli"]
    return {
        "import_seconds": total[0] / 1e6 if total else None,
        "imports_requests": "requests" in roots,
        "imports_tqdm": "tqdm" in roots,
    }


def optimizers() -> str:
    """Which optimizer classes mnist_cli.optim makes (a stand-in may make SGD for all)."""
    from mnist_cli.optim import OptimizerSpec, make_optimizer

    names = ("sgd", "momentum", "nesterov", "adam")
    made = (type(make_optimizer(OptimizerSpec(n))).__name__ for n in names)
    return ", ".join(f"{n} -> {m}" for n, m in zip(names, made))


def byte_compile() -> bool:
    """Write mnist_cli's bytecode (__pycache__), as an installed package has it: pip compiles
    a package when it installs it, and Python on a package's first import, unless told not to
    (PYTHONDONTWRITEBYTECODE, set on this machine), when an editable install would compile its
    ~45 modules from source in every process (≈ 30 ms of each command's start-up). Python
    checks each file's mtime, so an edited module is compiled afresh, never run stale."""
    return compileall.compile_dir(BENCH.parent / "mnist_cli", quiet=1)


def tricks(results: dict, cache: Path) -> None:
    results["tricks"], _, _ = spawn(
        [sys.executable, BENCH / "tricks.py", "--cache", cache]
    )


def cnn(results: dict, cache: Path, tmp: Path) -> None:
    """The cnn against PyTorch (bench/cnn_rows.py) at 1 and the default threads, and the peak
    RSS of mnist-train --config configs/cnn.toml run for one epoch (--epochs 1, to save time:
    its arrays are allocated before the first step, so more epochs add none)."""
    out: dict = {}
    if importlib.util.find_spec("torch"):
        for threads in (1, None):
            cmd = [sys.executable, BENCH / "cnn_rows.py", "--cache", cache]
            cmd += ["--threads", "1" if threads else "default"]
            out[label("cnn", threads)], _, _ = spawn(cmd, threads)
    command = [BIN / "mnist-train", "--config", BENCH.parent / "configs" / "cnn.toml",
               "--epochs", 1, "-q", "--force", "--out", tmp / "cnn",
               "--cache-dir", cache, "--mirror", MIRROR]  # fmt: skip
    _, out["train_rss_mb"], out["train_1_epoch_seconds"] = spawn(command, None)
    results["cnn"] = out


def checkpoint(results: dict, cache: Path) -> None:
    """bench/checkpoint_bench.py's rows() (issue 21), in a process of its own, 1 thread."""
    cmd = [sys.executable, BENCH / "checkpoint_bench.py", "--cache", cache]
    results["checkpoint"], _, _ = spawn([*cmd, "--rounds", 4, "--json"], 1)


def peers(rows: dict, results: dict, cache: Path, epochs: int) -> None:
    """The PyTorch rows, each mode and model with 1 and the default threads."""
    if not importlib.util.find_spec("torch"):
        results["torch"] = "PyTorch not installed: its rows are skipped"
        return
    for kind, mode in product(("softmax", "mlp"), ("dataloader", "memory")):
        for threads in (1, None):
            cmd = [sys.executable, BENCH / "peers.py", mode, "--cache", cache]
            data, rss, _ = spawn([*cmd, "--model", kind, "--epochs", epochs], threads)
            rows.update(
                {label(k, threads): {**v, "rss_mb": rss} for k, v in data.items()}
            )


def starting(results: dict, cache: Path, tmp: Path) -> None:
    """Warm load_dataset, mnist-eval --json, what mnist_cli.cli imports, start-up ratios."""
    starts = [worker("warm-start", cache)[0]["warm_start"] for _ in range(5)]
    results["warm_start_seconds"] = statistics.median(s["seconds"] for s in starts)
    results["warm_start_imports"] = starts[0]["imported"]
    evaluate = [BIN / "mnist-eval", tmp / "softmax", "--json", "--cache-dir", cache]
    results["eval_json_seconds"] = statistics.median(
        spawn(evaluate)[2] for _ in range(5)
    )
    results["imports"] = lazy_imports()
    results["startup"] = startup(cache, tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="epochs per contender")
    parser.add_argument("--torch-epochs", type=int, default=5, help="per PyTorch row")
    parser.add_argument("--out", type=Path, default=BENCH / "results.json")
    args = parser.parse_args()
    started = time.perf_counter()
    date = datetime.now(UTC).isoformat(timespec="seconds")
    results: dict = {"date": date, "machine": machine()}
    results["bytecode_compiled"] = byte_compile()
    results["optimizers"] = optimizers()
    rows: dict = {}
    with tempfile.TemporaryDirectory(prefix="mnist-bench-") as name:
        tmp = Path(name)
        cache = tmp / "cache"
        warmup = [BIN / "mnist-train", "--epochs", 1, "-q", "--out", tmp / "warmup"]
        spawn([*warmup, "--cache-dir", cache, "--mirror", MIRROR])
        print(f"cache filled from {MIRROR}", file=sys.stderr)
        for threads, sweep in ((1, SWEEP), (None, ())):
            rows.update(trainer_rows(cache, tmp, args.epochs, threads, sweep))
        print("floor, trainer and batch sweep done", file=sys.stderr)
        for threads in (1, None):
            rows.update(mlp_rows(cache, tmp, args.epochs, threads))
        print("mlp floor and trainer done", file=sys.stderr)
        data, rss = worker("outer", cache, "--samples", 3000)
        data["outer"]["rss_mb"] = rss
        rows.update({label(k, 1): {**v, "threads": 1} for k, v in data.items()})
        print("the per-sample np.outer loop done", file=sys.stderr)
        for what, part in (
            ("tricks", lambda: tricks(results, cache)),
            ("PyTorch", lambda: peers(rows, results, cache, args.torch_epochs)),
            ("cnn", lambda: cnn(results, cache, tmp)),
            ("checkpoint", lambda: checkpoint(results, cache)),
            ("start-up", lambda: starting(results, cache, tmp)),
            ("threads", lambda: results.update(threads=threads_table(cache, tmp))),
            ("end to end", lambda: results.update(end_to_end=end_to_end(cache, tmp))),
        ):
            try:  # a part that fails (the package moved under it) leaves the others
                part()
                print(f"{what} done", file=sys.stderr)
            except (Exception, SystemExit) as error:  # noqa: BLE001 (any, reported)
                results.setdefault("failed", {})[what] = repr(error)
                print(f"bench: {what} failed: {error!r}", file=sys.stderr)
    for row in rows.values():
        row["epoch_median_seconds"] = statistics.median(row["epoch_seconds"])
    results["rows"] = rows
    results["targets"] = TARGETS
    results["checks"] = summary(results)
    results["machine"]["load_average_end"] = os.getloadavg()
    results["bench_seconds"] = time.perf_counter() - started
    print(table(results))
    for what, error in results.get("failed", {}).items():
        print(f"FAILED: {what}: {error}")
    temp = args.out.with_name(args.out.name + ".tmp")
    temp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(temp, args.out)
    print(f"\nwrote {args.out} ({results['bench_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
