"""mnist-runs' table: one line per run, each column bounded, numbers on the right."""

from datetime import UTC

from mnist_cli.errors import shown
from mnist_cli.rundir.listing import RunSummary

COLUMNS = (
    "run",
    "model",
    "dataset",
    "loss",
    "epochs",
    "test",
    "val",
    "seconds",
    "created",
)
RIGHT = {"epochs", "test", "val", "seconds"}  # numbers, aligned on the right
# the widest each column may be: a longer cell is cut, ending in "…" (a metrics.json with 16
# hidden layers of 10⁸ units, or seconds 1e308, widened the table to 561 characters)
WIDTHS = {"run": 40, "model": 24, "dataset": 14, "loss": 14, "epochs": 11, "seconds": 9}


def table(runs: list[RunSummary]) -> str:
    """The runs as fixed-width columns under a header; a broken run shows its reason."""
    rows = [dict(zip(COLUMNS, COLUMNS, strict=True))] + [cells(r) for r in runs]
    rows = [{c: clip(text, WIDTHS.get(c)) for c, text in row.items()} for row in rows]
    widths = {c: max(len(row.get(c, "")) for row in rows) for c in COLUMNS}
    lines = []
    for row in rows:
        if "error" in row or "interrupted" in row:
            what = row.get("interrupted") or f"broken: {row['error']}"
            lines.append(f"{row['run']:<{widths['run']}}  {what}")
            continue
        line = "  ".join(
            f"{row[c]:>{widths[c]}}" if c in RIGHT else f"{row[c]:<{widths[c]}}"
            for c in COLUMNS
        )
        lines.append(line.rstrip())
    return "\n".join(lines)


def cells(r: RunSummary) -> dict[str, str]:
    name = printable(shown(r.name))
    if r.error:
        return {"run": name, "error": printable(r.error)}
    if r.interrupted:
        return {"run": name, "interrupted": printable(r.interrupted.line(r.path))}
    epochs = "?" if r.epochs is None else str(r.epochs)
    if r.solver == "exact":
        epochs = "exact"
    elif r.earlier_epochs and r.epochs is not None:
        epochs = f"{r.earlier_epochs}+{r.epochs - r.earlier_epochs}"
    return {
        "run": name,
        "model": model_text(r),
        "dataset": r.dataset or "?",
        "loss": r.loss or "?",
        "epochs": epochs,
        "test": percent(r.test_accuracy),
        "val": percent(r.val_accuracy),
        "seconds": duration(r.seconds),
        "created": r.created.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        if r.created
        else "-",
    }


def clip(text: str, width: int | None) -> str:
    """`text` cut to `width` characters, the last one "…", if it is longer."""
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


def duration(seconds: float | None) -> str:
    """Seconds to one decimal, or as 1.2e+07 from a million on: at most 9 characters."""
    if seconds is None:
        return "-"
    return f"{seconds:.1f}" if seconds < 999_999.95 else f"{seconds:.2g}"


def percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{100 * fraction:.2f}%"


def printable(s: str) -> str:
    """`s` with control characters (a newline in a directory name, an escape sequence) as ?."""
    return "".join(c if c.isprintable() else "?" for c in s)


def model_text(r: RunSummary) -> str:
    """The model as the table shows it: "mlp 256", "cnn 16,32 k5 / 128"."""
    hidden = ",".join(map(str, r.hidden))
    if r.channels:
        return (
            f"{r.model} {','.join(map(str, r.channels))} k{r.kernel} / {hidden or '-'}"
        )
    return " ".join([r.model or "?", hidden]).strip()
