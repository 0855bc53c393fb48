"""The benchmark's table, and its checks against the targets of the performance issue.

Rows are named "<contender> (<n> thread[s])", or "<contender> (default threads)" when no
thread variable was set (numpy's one per core for the floor and PyTorch, mnist-cli's choice
for ours). A trainer row that has its own floor epochs (one measured right after each of its
epochs) is compared epoch by epoch: its ratio is the median of the ratios of each pair, so a
change of the machine's speed between epochs, which hits both of a pair alike, cancels out.
Other rows use the floor measured with the same number of threads.
"""

import os
import statistics

TARGETS = {
    "trainer_vs_floor": 1.2,  # epoch time ≤ 1.2 × the BLAS floor (softmax and linear)
    "speedup_vs_outer": 25,  # ≥ 25 × faster than the per-sample `np.outer` loop
    "speedup_vs_torch_memory": 5,  # ≥ 5 × faster than PyTorch, tensors in memory
    "speedup_vs_torch_dataloader": 10,  # ≥ 10 × faster than the DataLoader idiom
    "warm_start_seconds": 0.05,  # load_dataset on a warm cache
    "eval_json_seconds": 0.5,  # mnist-eval RUN --json, wall, start-up included
    "train_rss_mb": 250,  # peak RSS of mnist-train
    # issue 14: the whole command, at every batch size
    "softmax_vs_floor": 1.25,  # softmax epoch / floor (paired median)
    "linear_vs_floor": 1.1,  # linear epoch / floor
    "batch 60000_vs_floor": 1.5,  # streamed in pieces
    "batch 32_vs_floor": 1.8,  # numpy's per-call cost, 1,875 steps an epoch
    "sweep_rss_mb": 250,  # peak RSS at every batch size of the sweep
    "end_to_end_vs_floor": 1.3,  # mnist-train --epochs 10 -q / (bare numpy + 10 floor epochs)
    # the scoring the run waits for (the last monitor, the final scores) / the SGD steps
    "scoring_vs_sgd": 0.15,
    "startup_vs_bare_numpy": 1.5,  # mnist-eval RUN, mnist-predict RUN IMAGE / import numpy
    "threads_default_vs_1": 1.05,  # default threads' wall and CPU / OPENBLAS_NUM_THREADS=1's
    "mlp_vs_floor": 1.15,  # mlp epoch ≤ 1.15 × its floor (the five products of a batch)
    "speedup_vs_torch_mlp_memory": 1.5,  # the mlp, ≥ 1.5 × faster than PyTorch's, in memory
    "speedup_vs_torch_mlp_dataloader": 2.2,  # ≥ 2.2 × faster than the DataLoader idiom
    "mlp_train_rss_mb": 300,  # peak RSS of mnist-train --model mlp
}

NOTES = {
    "floor": "X_b Wᵀ and ∂L/∂Zᵀ X_b only, pre-made float32 batches",
    "softmax": "ours, batch 100 (RSS: the mnist-train command)",
    "batch 32": "ours, softmax, lr 0.5",
    "batch 1000": "ours, softmax, lr 0.5",
    "batch 60000": "ours, softmax, lr 0.5: one full-batch step per epoch",
    "linear": "ours, batch 100 (RSS: the mnist-train command)",
    "outer": "the per-sample `np.outer` loop: {slice_samples:,} samples timed, "
    "extrapolated to 60,000",
    "softmax step only": "our step alone, on the floor's pre-made float32 batches",
    "gather + cast only": "our gather of the shuffled uint8 rows and cast, alone",
    "torch dataloader": "TensorDataset + DataLoader(shuffle) + nn.Linear + MSELoss + SGD",
    "torch memory": "same model and loss, float32 tensors in memory, indexed per batch",
    "mlp floor": "the mlp's five products per batch only, pre-made float32 batches",
    "mlp cross-entropy": "ours, 784-256-10 relu, batch 100, lr 0.5 (RSS: mnist-train)",
    "mlp squared": "ours, 784-256-10 relu, batch 100, lr 0.5",
    "mlp step only": "our mlp step alone, on pre-made float32 batches",
    "torch mlp dataloader": "the same mlp: DataLoader(shuffle) + nn.Sequential + "
    "CrossEntropyLoss + SGD",
    "torch mlp memory": "the same mlp, loss and optimizer, tensors in memory",
}
MLP = ("mlp cross-entropy", "mlp squared")


def base(name: str) -> str:
    return name.rsplit(" (", 1)[0]


def threads(row: dict) -> int:
    return row.get("threads") or os.cpu_count()


def rss(row: dict) -> str:
    return f"{row['rss_mb']:.0f} MB" if row.get("rss_mb") else "—"


def paired(seconds: list[float], other: list[float]) -> float:
    """The median of seconds[i] / other[i]: epochs measured one right after the other."""
    return statistics.median(a / b for a, b in zip(seconds, other, strict=True))


def floor_of(name: str) -> str:
    """The floor a row is compared with: the mlp's (five products) for the mlp rows."""
    return "mlp floor" if "mlp" in base(name) else "floor"


def floor_ratio(rows: dict, name: str) -> float:
    """Row `name`'s epoch time over its floor's: paired with the floor epochs measured between
    its own if it has them, else against the floor's median with the same number of threads."""
    row, floor_name = rows[name], floor_of(name)
    if row.get("floor_epoch_seconds"):
        return paired(row["epoch_seconds"], row["floor_epoch_seconds"])
    for n, r in rows.items():
        if base(n) == floor_name and threads(r) == threads(row):
            return row["epoch_median_seconds"] / r["epoch_median_seconds"]
    floor = min(
        r["epoch_median_seconds"] for n, r in rows.items() if base(n) == floor_name
    )
    return row["epoch_median_seconds"] / floor


def fastest(rows: dict, contender: str) -> float | None:
    times = [r["epoch_median_seconds"] for n, r in rows.items() if base(n) == contender]
    return min(times) if times else None


def summary(results: dict) -> list[dict]:
    """Each target with the value measured and whether it is met."""
    rows, t = results["rows"], TARGETS
    checks = []
    for name in rows:
        target = (
            t["mlp_vs_floor"] if base(name) in MLP else t.get(f"{base(name)}_vs_floor")
        )
        if target is not None:
            ratio = floor_ratio(rows, name)
            checks.append((f"{name} epoch / floor", ratio, "≤", target))
    ours = fastest(rows, "softmax")
    checks.append(
        (
            "speed-up vs the per-sample `np.outer` loop",
            fastest(rows, "outer") / ours,
            "≥",
            t["speedup_vs_outer"],
        )
    )
    for peer in ("memory", "dataloader", "mlp memory", "mlp dataloader"):
        # each PyTorch row against our epochs timed in the same process; the least favourable
        ratios = [
            paired(r["epoch_seconds"], r["ours_epoch_seconds"])
            for n, r in rows.items()
            if base(n) == f"torch {peer}"
        ]
        if ratios:
            target = t[f"speedup_vs_torch_{peer.replace(' ', '_')}"]
            checks.append(
                (f"speed-up vs torch {peer} (worst row)", min(ratios), "≥", target)
            )
    train_rss = max(
        r["rss_mb"] for n, r in rows.items() if base(n) in ("softmax", "linear")
    )
    checks.append(("mnist-train peak RSS, MB", train_rss, "≤", t["train_rss_mb"]))
    for n, r in rows.items():
        if base(n) == MLP[0] and r.get("rss_mb"):
            what = "mlp peak RSS, MB (mnist-train --config configs/mlp.toml)"
            checks.append((what, r["rss_mb"], "≤", t["mlp_train_rss_mb"]))
    torch_rss = [
        r["rss_mb"] for n, r in rows.items() if n.startswith("torch") and "mlp" not in n
    ]
    if torch_rss:
        checks.append(
            ("lowest torch peak RSS, MB (> ours)", min(torch_rss), "≥", train_rss)
        )
    imports = results["imports"]
    checks += [
        ("warm load_dataset, s", results["warm_start_seconds"], "≤", t["warm_start_seconds"]),
        ("mnist-eval RUN --json, wall s", results["eval_json_seconds"], "≤",
         t["eval_json_seconds"]),
        ("import mnist_cli.cli loads requests/tqdm", int(
            imports["imports_requests"] or imports["imports_tqdm"]), "≤", 0),
    ]  # fmt: skip
    checks += whole_command_checks(results)
    return [
        {"what": what, "value": value, "op": op, "target": target,
         "met": bool(value <= target if op == "≤" else value >= target)}
        for what, value, op, target in checks
    ]  # fmt: skip


# --- the whole command, start-up, BLAS threads, the sweep's memory (issue 14) ----------------


def whole_command_checks(results: dict) -> list[tuple]:
    """The targets of issue 14 that are not an epoch's: end to end, scoring, start-up, threads,
    the sweep's peak RSS."""
    t, checks = TARGETS, []
    sweep = [
        r["rss_mb"] for n, r in results["rows"].items() if base(n).startswith("batch ")
    ]
    if sweep:
        checks.append(
            ("peak RSS at every batch size, MB", max(sweep), "≤", t["sweep_rss_mb"])
        )
    if e2e := results.get("end_to_end"):
        checks.append(
            (
                "mnist-train --epochs 10 -q / floor of the job",
                e2e["ratio"],
                "≤",
                t["end_to_end_vs_floor"],
            )
        )
        checks.append(
            (
                "scoring in line / SGD time, batch 100",
                e2e["scoring_vs_sgd"],
                "≤",
                t["scoring_vs_sgd"],
            )
        )
    for name, row in results.get("startup", {}).items():
        if name != "bare":
            checks.append(
                (
                    f"{name} / import numpy",
                    row["vs_bare_numpy"],
                    "≤",
                    t["startup_vs_bare_numpy"],
                )
            )
    if threads := results.get("threads"):
        one, default = threads["1 thread"], threads["default"]
        checks.append(
            (
                "default threads wall / 1 thread's",
                1 / one["wall_vs_default"],
                "≤",
                t["threads_default_vs_1"],
            )
        )
        checks.append(
            (
                "default threads CPU / 1 thread's",
                default["cpu"] / one["cpu"],
                "≤",
                t["threads_default_vs_1"],
            )
        )
    return checks  # fmt: skip


def whole_command_lines(results: dict) -> list[str]:
    """The end-to-end row with its breakdown, the threads table and the start-up ratios."""
    lines = []
    if e2e := results.get("end_to_end"):
        head = (
            f"mnist-train --epochs {e2e['epochs']} --quiet (softmax, default config, warm "
            f"cache, no thread variable): wall {e2e['wall']:.2f} s, CPU {e2e['cpu']:.2f} s, "
            f"floor {e2e['floor']:.2f} s (bare import numpy + {e2e['epochs']} floor epochs, "
            f"1 thread): {e2e['ratio']:.2f}× (median of {len(e2e['rounds']['wall'])} rounds)"
        )
        parts = ", ".join(f"{k} {1000 * v:.0f} ms" for k, v in e2e["breakdown"].items())
        lines += ["", head, f"  breakdown: {parts}"]
        if "monitor_seconds" in e2e:
            lines.append(
                f"  the monitor's scorer: {1000 * e2e['monitor_seconds']:.0f} ms in all, all "
                "but the last epoch's beside the next epoch's steps (in SGD's time, not in "
                "scoring's)"
            )
    if threads := results.get("threads"):
        title = "BLAS threads (mnist-train --epochs 10 -q)"
        header = f"{title:<44}{'wall':>8}{'CPU':>8}{'wall / default':>16}"
        lines += ["", header, "-" * 76]
        for name, r in threads.items():
            lines.append(
                f"{name:<44}{r['wall']:>7.2f}s{r['cpu']:>7.2f}s{r['wall_vs_default']:>15.2f}×"
            )
    if start := results.get("startup"):
        lines += [""] + [
            f"{name}: {1000 * r['wall']:.0f} ms, {r['vs_bare_numpy']:.2f}× a bare import numpy"
            for name, r in start.items()
            if name != "bare"
        ]
    return lines


def table(results: dict) -> str:
    rows = results["rows"]
    header = (
        f"{'contender':<30}{'epoch median':>13}{'× floor':>9}{'test acc':>17}"
        f"{'peak RSS':>10}  note"
    )
    lines = [header, "-" * 130]
    for name, r in rows.items():
        ms = 1000 * r["epoch_median_seconds"]
        ratio = floor_ratio(rows, name)
        acc = (
            f"{100 * r['test_accuracy']:.2f}% ({r['epochs']} ep)"
            if "test_accuracy" in r
            else "—"
        )
        note = NOTES.get(base(name), "ours, softmax").format_map(r)
        lines.append(
            f"{name:<30}{ms:>10.1f} ms{ratio:>8.2f}×{acc:>17}{rss(r):>10}  {note}"
        )
    lines += whole_command_lines(results)
    lines += ["", f"{'check':<46}{'measured':>10}   target", "-" * 80]
    for c in results["checks"]:
        verdict = "ok" if c["met"] else "NOT MET"
        lines.append(
            f"{c['what']:<46}{c['value']:>10.3g}   {c['op']} {c['target']:<8g}{verdict}"
        )
    m = results["machine"]
    lines.append(
        f"\n{results['date']}, {m['cores']} cores ({m['cpu']}), numpy {m['numpy']}, "
        f"load average {m['load_average'][0]:.1f} at start, "
        f"{m['load_average_end'][0]:.1f} at end"
    )
    lines.append(
        f"import mnist_cli.cli: {results['imports']['import_seconds']:.3f} s "
        "(python -X importtime; requests and tqdm are imported only when needed)"
    )
    if "torch" in results:
        lines.append(results["torch"])
    return "\n".join(lines)


def markdown(results: dict) -> str:
    """The table as Markdown, for the README: python bench/report.py bench/results.json"""
    rows = results["rows"]
    lines = [
        "| contender | epoch (median) | × floor | test accuracy | peak RSS |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        ratio = floor_ratio(rows, name)
        acc = (
            f"{100 * r['test_accuracy']:.2f}% ({r['epochs']} ep)"
            if "test_accuracy" in r
            else "—"
        )
        star = " *" if base(name) == "outer" else ""
        lines.append(
            f"| {name}{star} | {1000 * r['epoch_median_seconds']:.1f} ms | {ratio:.2f}× "
            f"| {acc} | {rss(r)} |"
        )
    lines += ["", "| check | measured | target | |", "|---|---:|---|---|"]
    for c in results["checks"]:
        verdict = "ok" if c["met"] else "**not met**"
        lines.append(
            f"| {c['what']} | {c['value']:.3g} | {c['op']} {c['target']:g} | {verdict} |"
        )
    if whole := whole_command_lines(results):
        lines += ["", "```", *whole[1:], "```"]  # the end-to-end row, threads, start-up
    return "\n".join(lines)


if __name__ == "__main__":
    import json
    import sys

    with open(sys.argv[1] if len(sys.argv) > 1 else "bench/results.json") as f:
        print(markdown(json.load(f)))
