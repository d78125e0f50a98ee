#!/usr/bin/env python3
"""Plots for spikegrad runs: training curves, MI over epochs, robustness vs epsilon, the sparsity scatter,
the MI-robustness trend.

  plot.py run RUN_DIR          every plot the run folder supports, into RUN_DIR/plots/*.png, and a "Plots"
                               section in RUN_DIR/report.md linking them (re-running replaces the section)
  plot.py sweep FILE... [-o PNG] [--title T]   robust accuracy vs epsilon, one line per attack (and file)
  plot.py scatter CSV [-o PNG] [--title T] [--x COLUMN]   robust (and clean) accuracy vs a sparsity column
                               (default sparsity; domain_z: the input gradient's exact-zero fraction, as
                               scripts/sparsity_sweep.sh plots it), one point per row
  plot.py trend CSV [-o PNG] [--title T]   robust accuracy vs test-set MI(X;Z), colour = lambda, label =
                               epoch: the "higher temporal MI, more fragile" trend (scripts/mi_trend.sh)

Inputs
  metrics.csv      what `spikegrad train` writes: epoch, lr, the loss parts (loss, ce or tet, mi_bits, entropy,
                   ...), train_acc, val_acc (empty without a validation split), test_acc, ... Accuracies in %.
                   It holds no validation loss: the loss curves are the training epoch means.
  attack sweep     either the attack table `spikegrad attack --eps 0,2/255,4/255 ...` prints (save its stdout,
                   e.g. as RUN_DIR/attack_sweep.md; the settings column gives each row's eps, GN's noise std
                   stands in for it, CW rows (L2, no eps) and AutoAttack's per-stage rows are left out), or a
                   CSV with the columns eps, robust_acc (%), and optionally attack, examples. An eps is a
                   number or a fraction such as 4/255.
  sparsity CSV     columns model, sparsity, clean_acc, robust_acc, and optionally eps, attack. sparsity is the
                   fraction of silent neuron-time-steps (1 - mean firing rate, in [0, 1]); accuracies in %.
                   One row per model (and attack, eps). `spikegrad analyze` writes one such row in its
                   summary.csv (attack fgsm at its --eps, accuracies on the analysed examples); further
                   columns there (input_z, s_eff, R, bounds, ...: README "spikegrad analyze") are ignored
                   here. Concatenate several models' summary.csv rows under one header.
  trend CSV        columns lambda, epoch, test_mi_bits, robust_acc, and optionally clean_acc, attack, eps:
                   one row per (lambda, epoch), what scripts/mi_trend.sh collects from metrics.csv files of
                   `spikegrad train --track-robustness N` runs (MI in bits, accuracies in %).
  In `run` mode: RUN_DIR/metrics.csv, RUN_DIR/attack_sweep.{md,txt,csv}, RUN_DIR/sparsity.csv, as present.

Needs matplotlib (Debian: python3-matplotlib); the engine and its tests never do. Bad input is a one-line
error naming the file and what was expected, exit code 2; matplotlib missing is exit code 3.
"""
import argparse
import csv
import functools
import json
import os
import re
import sys
from fractions import Fraction

EXIT_BAD_INPUT = 2
EXIT_NO_MATPLOTLIB = 3
# The report section is found again by these markers, so re-running replaces it instead of adding another.
SECTION_BEGIN = "<!-- plots: begin (written by scripts/plot.py; re-running it replaces this section) -->"
SECTION_END = "<!-- plots: end -->"
SWEEP_FILES = ("attack_sweep.md", "attack_sweep.txt", "attack_sweep.csv")
SCATTER_COLUMNS = ("model", "clean_acc", "robust_acc")
# What each sparsity column means, for the x axis (a fraction in [0, 1] each).
SCATTER_X_LABELS = {
    "sparsity": "sparsity (fraction of silent neuron-time-steps, 1 − firing rate)",
    "domain_z": "input-gradient sparsity (fraction of exact zeros in dL/d input)",
    "input_z": "pixel-gradient sparsity (fraction of exact zeros in dL/d pixels)",
    "input_s_eff": "input-gradient effective support s_eff = (‖g‖₁/‖g‖₂)² / D",
    "domain_s_eff": "input-gradient effective support s_eff = (‖g‖₁/‖g‖₂)² / D",
}


class PlotError(Exception):
    """Expected bad input: reported as one line, never a traceback."""


@functools.lru_cache(maxsize=None)
def load_pyplot():
    """pyplot, imported once and only after the inputs were read: importing it takes about a second."""
    try:
        import matplotlib
    except ImportError:
        other = "" if sys.executable == "/usr/bin/python3" else f" for {sys.executable} (try /usr/bin/python3)"
        print(f"plot.py: matplotlib is not installed{other}; Debian: apt-get install python3-matplotlib",
              file=sys.stderr)
        sys.exit(EXIT_NO_MATPLOTLIB)
    matplotlib.use("Agg")  # files only: no display needed, and none is opened
    import matplotlib.pyplot as plt
    return plt


def parse_number(text, where):
    """A float or a fraction such as 4/255 (how spikegrad writes an epsilon)."""
    try:
        return float(Fraction(text.strip())) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        raise PlotError(f"{where}: expected a number, got '{text}'") from None


def read_csv(path, required):
    """Rows of a CSV as dicts; an error names the file and every missing column."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            # A row longer than the header keeps its extra cells under the key None: they are ignored.
            rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    except OSError as e:
        raise PlotError(f"{path}: cannot read: {e.strerror}") from None
    except (csv.Error, UnicodeDecodeError) as e:
        raise PlotError(f"{path}: not a CSV file: {e}") from None
    if not columns:
        raise PlotError(f"{path}: empty file; expected a header row with {', '.join(required)}")
    missing = [c for c in required if c not in columns]
    if missing:
        raise PlotError(f"{path}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                        f"(has {', '.join(columns)})")
    if not rows:
        raise PlotError(f"{path}: no data rows below the header")
    return columns, rows


def column(rows, name, path, optional=False):
    """The numbers of one column; with optional=True an empty cell is None (val_acc without a validation split)."""
    values = []
    for line, row in enumerate(rows, start=2):
        cell = row.get(name, "")
        if cell == "" and optional:
            values.append(None)
            continue
        values.append(parse_number(cell, f"{path} line {line}, column {name}"))
    return values


def run_title(run_dir):
    """'name (model on dataset)' from config.json when it is there and readable, else the folder's name."""
    name = os.path.basename(os.path.abspath(run_dir))
    try:
        with open(os.path.join(run_dir, "config.json")) as f:
            config = json.load(f)
        name = config.get("name") or name
        if config.get("model") and config.get("dataset"):
            return f"{name} ({config['model']} on {config['dataset']})"
    except (OSError, ValueError, AttributeError):
        pass  # the title is a courtesy: a missing or odd config.json does not stop the plots
    return name


def epoch_axis(ax, epochs):
    """Whole epochs on the x axis: every epoch of a short run (one epoch would get ticks at 0.95, 0.96, ...)."""
    from matplotlib.ticker import MaxNLocator
    ax.set_xlabel("epoch")
    if len(set(epochs)) <= 20:
        ax.set_xticks(sorted(set(epochs)))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)


def save(fig, path):
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=110)
    except OSError as e:
        raise PlotError(f"{path}: cannot write: {e.strerror}") from None
    finally:
        fig.clf()
    return path


# ---- training curves and MI (metrics.csv) ----

def plot_training(metrics_path, title, out_dir):
    """training_curves.png (loss parts and accuracies) and, when metrics.csv has mi_bits, mi.png."""
    columns, rows = read_csv(metrics_path, ["epoch", "loss", "train_acc"])
    epochs = column(rows, "epoch", metrics_path)
    # Loss parts are the columns between lr and train_acc (apps/metrics.cpp); MI is in bits and gets its own plot.
    first = columns.index("lr") + 1 if "lr" in columns else columns.index("epoch") + 1
    parts = [c for c in columns[first:columns.index("train_acc")] if c != "mi_bits"] or ["loss"]
    written, plt = [], load_pyplot()

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    for part in parts:
        name = "total loss" if part == "loss" else part  # loss = the base loss + the weighted terms
        ax_loss.plot(epochs, column(rows, part, metrics_path), marker="o", label=f"{name} (train)")
    ax_loss.set_ylabel("loss (training epoch mean; CE/TET in nats)")
    ax_loss.set_title("loss")
    epoch_axis(ax_loss, epochs)
    ax_loss.legend()
    for name, label in (("train_acc", "train"), ("val_acc", "validation"), ("test_acc", "test")):
        if name not in columns:
            continue
        values = column(rows, name, metrics_path, optional=True)
        points = [(e, v) for e, v in zip(epochs, values) if v is not None]
        if points:  # val_acc is empty in every row of a run without a validation split
            ax_acc.plot(*zip(*points), marker="o", label=label)
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.set_title("accuracy")
    epoch_axis(ax_acc, epochs)
    ax_acc.legend()
    fig.suptitle(f"Training curves: {title}")
    fig.tight_layout()
    written.append(("Training curves", "loss parts (training epoch means) and train / validation / test accuracy "
                    "per epoch, from metrics.csv", save(fig, os.path.join(out_dir, "training_curves.png"))))
    plt.close(fig)

    if "mi_bits" in columns:
        mi = column(rows, "mi_bits", metrics_path, optional=True)
        points = [(e, v) for e, v in zip(epochs, mi) if v is not None]
        if points:
            fig, ax = plt.subplots(figsize=(6.5, 4.2))
            ax.plot(*zip(*points), marker="o", color="tab:purple", label="MI(X;Z), KDE (train)")
            ax.set_ylabel("MI(X;Z) (bits, training epoch mean)")
            ax.set_title(f"Mutual information over epochs\n{title}")
            epoch_axis(ax, epochs)
            ax.legend()
            fig.tight_layout()
            written.append(("MI over epochs", "the KDE estimate of I(X;Z) between the tapped spike layers "
                            "(the TMI term), training epoch mean in bits, from metrics.csv",
                            save(fig, os.path.join(out_dir, "mi.png"))))
            plt.close(fig)
    return written


# ---- robustness vs epsilon (attack sweep) ----

def read_attack_table(path):
    """(label, eps, robust accuracy %, examples) per row of the table(s) `spikegrad attack` prints."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise PlotError(f"{path}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise PlotError(f"{path}: not a text file; expected the attack table of `spikegrad attack`") from None
    points, header, prefix = [], None, ""
    for number, line in enumerate(lines, start=1):
        if not line.startswith("|"):
            header = None
            if line.startswith("Transfer attacks"):  # the --source-checkpoint table follows
                prefix = "transfer "
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            continue
        if set("".join(cells)) <= set("-: "):  # the |---|---| row
            continue
        if not {"attack", "settings", "robust accuracy (%)"} <= set(header):
            continue  # another table (e.g. the obfuscation checks)
        row = dict(zip(header, cells))
        attack, settings = row["attack"], row["settings"]
        if attack.startswith("autoattack: "):
            continue  # the ensemble's per-stage rows: partial results of the autoattack row
        found = re.search(r"\b(eps|std) ([0-9./eE+-]+)", settings)
        if not found:
            continue  # CW: an L2 attack without an eps
        label = prefix + attack + (" (noise std)" if found.group(1) == "std" else "")
        points.append((label, parse_number(found.group(2).rstrip(","), f"{path} line {number}, settings"),
                       parse_number(row["robust accuracy (%)"], f"{path} line {number}, robust accuracy (%)"),
                       row.get("examples")))
    if not points:
        raise PlotError(f"{path}: no attack table with an eps in its settings column; expected the output of "
                        "`spikegrad attack --eps ...` (columns attack | settings | ... | robust accuracy (%)) "
                        "or a CSV with columns eps, robust_acc[, attack]")
    return points


def read_sweep(path):
    if path.lower().endswith(".csv"):
        columns, rows = read_csv(path, ["eps", "robust_acc"])
        eps, acc = column(rows, "eps", path), column(rows, "robust_acc", path)
        labels = [row.get("attack") or "attack" for row in rows]
        return list(zip(labels, eps, acc, [row.get("examples") for row in rows]))
    return read_attack_table(path)


def plot_sweep(paths, title, out_path):
    sweeps = [(path, read_sweep(path)) for path in paths]
    plt = load_pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.4))
    several, examples = len(paths) > 1, set()
    for path, points in sweeps:
        lines = {}
        for label, eps, acc, n in points:
            lines.setdefault(label, []).append((eps, acc))
            examples.add(n)
        stem = os.path.splitext(os.path.basename(path))[0]
        for label, points in lines.items():
            points.sort()
            xs = [e * 255 for e, _ in points]  # in 255ths: the unit papers quote, 4/255 -> 4
            ax.plot(xs, [a for _, a in points], marker="o", label=f"{stem}: {label}" if several else label)
    ax.set_xlabel("ε (L∞ radius, in 1/255 of the [0,1] pixel range)")
    # The attacked subset's size says how far apart two lines must be to differ (one example = 100/n %).
    n = examples.pop() if len(examples) == 1 else None
    ax.set_ylabel(f"robust accuracy (%, {n} test examples)" if n else "robust accuracy (%)")
    ax.set_title(f"Robustness vs ε\n{title}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save(fig, out_path)
    plt.close(fig)
    return out_path


# ---- the sparsity scatter ----

def finish_legend_plot(plt, fig, ax, out_path):
    """Grid, legend, layout; writes the PNG and closes the figure."""
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, out_path)
    plt.close(fig)
    return out_path


def plot_scatter(path, title, out_path, x="sparsity"):
    if x not in SCATTER_X_LABELS:
        raise PlotError(f"--x {x}: expected one of {', '.join(SCATTER_X_LABELS)}")
    columns, rows = read_csv(path, list(SCATTER_COLUMNS) + [x])
    sparsity = column(rows, x, path)
    clean, robust = column(rows, "clean_acc", path), column(rows, "robust_acc", path)
    for line, s in enumerate(sparsity, start=2):
        if not 0 <= s <= 1:
            raise PlotError(f"{path} line {line}, column {x}: expected a fraction in [0, 1], got {s}")
    eps = [row.get("eps", "") for row in rows]
    attacks = [row.get("attack", "") for row in rows]
    groups = {}  # one colour per (attack, eps): robustness at different radii is not comparable
    for i, key in enumerate(zip(attacks, eps)):
        groups.setdefault(key, []).append(i)
    plt = load_pyplot()
    fig, ax = plt.subplots(figsize=(6.8, 4.8))
    for n, ((attack, e), members) in enumerate(groups.items()):
        colour = f"C{n % 10}"
        name = " ".join(p for p in (attack, f"ε {e}" if e else "") if p) or "attack"
        xs = [sparsity[i] for i in members]
        ax.scatter(xs, [robust[i] for i in members], color=colour, label=f"robust ({name})", zorder=3)
        for i in members:  # clean accuracy above each point, joined to it: the price of the attack
            ax.plot([sparsity[i]] * 2, [robust[i], clean[i]], color=colour, alpha=0.35, lw=1)
    named = set()  # each model named once, at its clean point (several attacks share it)
    for i, row in enumerate(rows):
        if row["model"] not in named:
            named.add(row["model"])
            ax.annotate(row["model"], (sparsity[i], clean[i]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.scatter(sparsity, clean, facecolors="none", edgecolors="black", label="clean", zorder=3)
    ax.set_xlabel(SCATTER_X_LABELS[x])
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"Sparsity vs robustness\n{title}")
    return finish_legend_plot(plt, fig, ax, out_path)


# ---- the MI-robustness trend ----

TREND_COLUMNS = ("lambda", "epoch", "test_mi_bits", "robust_acc")


def plot_trend(path, title, out_path):
    _, rows = read_csv(path, list(TREND_COLUMNS))
    lambdas, epochs = column(rows, "lambda", path), column(rows, "epoch", path)
    mi, robust = column(rows, "test_mi_bits", path), column(rows, "robust_acc", path)
    for line, (m, r) in enumerate(zip(mi, robust), start=2):
        if m < 0:
            raise PlotError(f"{path} line {line}, column test_mi_bits: expected MI >= 0 bits, got {m}")
        if not 0 <= r <= 100:
            raise PlotError(f"{path} line {line}, column robust_acc: expected a percentage in [0, 100], got {r}")
    attack = " ".join(p for p in (rows[0].get("attack", ""), f"ε {rows[0]['eps']}" if rows[0].get("eps") else "")
                      if p)
    plt = load_pyplot()
    fig, ax = plt.subplots(figsize=(6.8, 4.8))
    for n, lam in enumerate(sorted(set(lambdas))):  # one colour per λ, its epochs joined in order
        members = sorted((i for i, v in enumerate(lambdas) if v == lam), key=lambda i: epochs[i])
        colour = f"C{n % 10}"
        xs, ys = [mi[i] for i in members], [robust[i] for i in members]
        ax.plot(xs, ys, color=colour, alpha=0.35, lw=1)
        ax.scatter(xs, ys, color=colour, label=f"λ = {lam:g}", zorder=3)
        for i in members:
            ax.annotate(f"e{int(epochs[i])}", (mi[i], robust[i]), textcoords="offset points", xytext=(4, 3),
                        fontsize=7)
    ax.set_xlabel("test-set KDE MI(X;Z) (bits, mean over examples)")
    ax.set_ylabel(f"robust accuracy (%{', ' + attack if attack else ''})")
    ax.set_title(f"Temporal MI vs robustness (label: epoch)\n{title}")
    return finish_legend_plot(plt, fig, ax, out_path)


# ---- the run folder and its report ----

def report_section(entries):
    lines = [SECTION_BEGIN, "## Plots", ""]
    for heading, what, path in entries:
        rel = "plots/" + os.path.basename(path)
        lines += [f"- [{heading}]({rel}): {what}", "", f"![{heading}]({rel})", ""]
    lines.append(SECTION_END)
    return "\n".join(lines) + "\n"


def update_report(report_path, section):
    """Replaces the Plots section between the markers, or appends one; written atomically."""
    try:
        with open(report_path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise PlotError(f"{report_path}: cannot read: {e.strerror}") from None
    begin, end = text.find(SECTION_BEGIN), text.find(SECTION_END)
    if begin >= 0 and end > begin:
        tail = text[end + len(SECTION_END):].lstrip("\n")
        text = text[:begin] + section + ("\n" + tail if tail else "")
    elif begin >= 0 or end >= 0:
        raise PlotError(f"{report_path}: holds only one of the Plots section's markers; remove the partial "
                        "section by hand and re-run")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    temporary = report_path + ".plot-tmp"
    try:
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(temporary, report_path)
    except OSError as e:
        raise PlotError(f"{report_path}: cannot write: {e.strerror}") from None


def plot_run(run_dir):
    if not os.path.isdir(run_dir):
        raise PlotError(f"{run_dir}: not a folder; expected a run folder (runs/<name>/)")
    metrics = os.path.join(run_dir, "metrics.csv")
    if not os.path.isfile(metrics):
        raise PlotError(f"{run_dir}: no metrics.csv; expected a run folder written by `spikegrad train`")
    title, out_dir = run_title(run_dir), os.path.join(run_dir, "plots")
    entries = plot_training(metrics, title, out_dir)
    sweeps = [os.path.join(run_dir, f) for f in SWEEP_FILES if os.path.isfile(os.path.join(run_dir, f))]
    if sweeps:
        entries.append(("Robustness vs ε", "robust accuracy per attack against the attack radius, from "
                        + ", ".join(os.path.basename(s) for s in sweeps),
                        plot_sweep(sweeps, title, os.path.join(out_dir, "robustness.png"))))
    if os.path.isfile(os.path.join(run_dir, "sparsity.csv")):
        entries.append(("Sparsity vs robustness", "robust and clean accuracy against spiking sparsity, from "
                        "sparsity.csv", plot_scatter(os.path.join(run_dir, "sparsity.csv"), title,
                                                     os.path.join(out_dir, "sparsity.png"))))
    for _, _, path in entries:
        print(f"wrote {path}")
    report = os.path.join(run_dir, "report.md")
    # report.md is the trainer's sign that a run finished: never create it, or `--resume` would skip the report.
    if os.path.isfile(report):
        update_report(report, report_section(entries))
        print(f"updated the Plots section of {report}")
    else:
        print(f"{report}: not there yet (the run has not finished); the plots are not linked from it")


def main(argv):
    parser = argparse.ArgumentParser(prog="plot.py", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n", 2)[2], formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="{run,sweep,scatter,trend}")
    sub.required = True
    run = sub.add_parser("run", help="every plot of a run folder, linked from its report.md")
    run.add_argument("run_dir", metavar="RUN_DIR")
    sweep = sub.add_parser("sweep", help="robust accuracy vs epsilon from attack sweep files")
    sweep.add_argument("files", metavar="FILE", nargs="+", help="`spikegrad attack` output or eps,robust_acc CSV")
    sweep.add_argument("-o", "--out", default="robustness.png", help="PNG to write (default: robustness.png)")
    sweep.add_argument("--title", default=None, help="what the plot is of (default: the files' names)")
    scatter = sub.add_parser("scatter", help="accuracy vs sparsity from a model,sparsity,clean_acc,robust_acc CSV")
    scatter.add_argument("csv", metavar="CSV")
    scatter.add_argument("-o", "--out", default="sparsity.png", help="PNG to write (default: sparsity.png)")
    scatter.add_argument("--title", default=None, help="what the plot is of (default: the file's name)")
    scatter.add_argument("--x", default="sparsity", choices=sorted(SCATTER_X_LABELS),
                         help="the sparsity column on the x axis (default: sparsity)")
    trend = sub.add_parser("trend", help="robust accuracy vs test MI(X;Z), per lambda and epoch (mi_trend.sh)")
    trend.add_argument("csv", metavar="CSV")
    trend.add_argument("-o", "--out", default="trend.png", help="PNG to write (default: trend.png)")
    trend.add_argument("--title", default=None, help="what the plot is of (default: the file's name)")
    args = parser.parse_args(argv)

    try:
        if args.command == "run":
            plot_run(args.run_dir)
        elif args.command == "sweep":
            title = args.title or ", ".join(os.path.basename(f) for f in args.files)
            print(f"wrote {plot_sweep(args.files, title, args.out)}")
        elif args.command == "trend":
            print(f"wrote {plot_trend(args.csv, args.title or os.path.basename(args.csv), args.out)}")
        else:
            print(f"wrote {plot_scatter(args.csv, args.title or os.path.basename(args.csv), args.out, args.x)}")
    except PlotError as e:
        print(f"plot.py: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
