#!/usr/bin/env python3
"""Turns Google Benchmark JSON files (one per bench binary) into one markdown section for docs/perf.md.

The section names the device (CPU model from /proc/cpuinfo; GPU name and driver from nvidia-smi when it
exists), the date of the run, the git commit (marked when the working tree has uncommitted changes), the
command, and one table per binary: benchmark name, time and main-thread CPU time per iteration, iterations, every counter, label.
Skipped benchmarks (error_occurred, e.g. "no CUDA device") are listed as "skipped: <message>", never as
numbers. A file that is missing or not valid JSON (the binary crashed) is reported as such.

A development script run by scripts/bench.sh; Python 3 standard library only, never used by the build.
Usage: bench_to_markdown.py [--command CMD] [--build-dir DIR] [--append FILE] RESULT.json...
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd):
    """stdout of cmd, stripped, or None when it cannot run or fails."""
    try:
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def cpu_description():
    model, logical = None, 0
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model is None:
                    model = value.strip()
                elif key == "processor":
                    logical += 1
    except OSError:
        pass
    text = model or "unknown CPU"
    text += f", {logical or os.cpu_count()} logical cores"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    text += f", {int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                    break
    except (OSError, ValueError, IndexError):
        pass
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads:
        text += f", OMP_NUM_THREADS={threads}"
    return text


def gpu_description():
    if shutil.which("nvidia-smi") is None:
        return "none (nvidia-smi not found)"
    out = run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"])
    if not out:
        return "none (nvidia-smi found no device)"
    gpus = []
    for line in out.splitlines():
        name, _, driver = line.partition(",")
        gpus.append(f"{name.strip()} (driver {driver.strip()})")
    return "; ".join(gpus)


def commit_description():
    commit = run(["git", "rev-parse", "--short", "HEAD"])
    if commit is None:
        return "unknown (not a git checkout)"
    dirty = run(["git", "status", "--porcelain"])  # untracked, not ignored files count too
    return f"{commit} (plus uncommitted changes)" if dirty else commit


def build_description(build_dir):
    if not build_dir:
        return None
    cache = {}
    try:
        with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
            for line in f:
                key, sep, value = line.strip().partition("=")
                if sep and not line.startswith(("#", "//")):
                    cache[key.split(":")[0]] = value
    except OSError:
        return f"`{build_dir}` (no CMakeCache.txt)"
    text = f"`{build_dir}`, CMAKE_BUILD_TYPE={cache.get('CMAKE_BUILD_TYPE') or 'unset'}"
    cuda = cache.get("CMAKE_CUDA_COMPILER", "")
    text += f", CUDA compiler {cuda}" if cuda and not cuda.endswith("NOTFOUND") else ", no CUDA compiler"
    return text


def number(value):
    """Four significant figures; no exponent for large values (throughputs read better as 12,345)."""
    if value == 0:
        return "0"
    if abs(value) >= 1e4:
        return f"{value:,.0f}"
    return f"{value:.4g}" if abs(value) >= 1e-3 else f"{value:.3e}"


def time_text(row, key):
    if row.get("aggregate_unit") == "percentage":
        return f"{100 * row[key]:.2f}%"
    return f"{number(row[key])} {row.get('time_unit', 'ns')}"


COMMON_KEYS = {
    "name", "family_index", "per_family_instance_index", "run_name", "run_type", "repetitions",
    "repetition_index", "threads", "iterations", "real_time", "cpu_time", "time_unit", "label",
    "error_occurred", "error_message", "aggregate_name", "aggregate_unit", "skipped", "skip_message",
    "bytes_per_second", "items_per_second", "big_o", "rms", "complexity_n",
}


def skipped_message(row):
    if row.get("error_occurred"):
        return row.get("error_message") or "error"
    if row.get("skipped"):  # newer Google Benchmark writes skips this way
        return row.get("skip_message") or "skipped"
    return None


def counter_names(rows):
    names = []
    for row in rows:
        if skipped_message(row) is not None:
            continue
        for key, value in row.items():
            if key not in names and (key not in COMMON_KEYS or key in ("bytes_per_second", "items_per_second")):
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    names.append(key)
    return names


def table(rows):
    counters = counter_names(rows)
    with_label = any(row.get("label") for row in rows)
    header = ["benchmark", "time", "CPU time", "iterations"] + counters + (["label"] if with_label else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        message = skipped_message(row)
        if message is not None:
            cells = [f"`{row['name']}`", f"skipped: {message}"] + [""] * (len(header) - 2)
        else:
            cells = [f"`{row['name']}`", time_text(row, "real_time"), time_text(row, "cpu_time"), str(row.get("iterations", ""))]
            cells += [number(row[c]) if c in row else "" for c in counters]
            if with_label:
                cells.append(row.get("label", ""))
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return lines


def load(path):
    """(context, benchmarks) or (None, why it could not be read)."""
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return None, "no results file (the binary did not start or was killed)"
    except (OSError, json.JSONDecodeError) as e:
        return None, f"results file is unreadable or incomplete ({e}); the binary probably crashed"
    if not isinstance(data, dict) or "benchmarks" not in data:
        return None, "results file is not Google Benchmark JSON"
    return data.get("context", {}), data["benchmarks"]


def section(paths, command, build_dir):
    loaded = [(path, *load(path)) for path in paths]
    contexts = [c for _, c, _ in loaded if c is not None]
    date = contexts[0].get("date", "unknown") if contexts else "unknown"
    load_avg = contexts[0].get("load_avg") if contexts else None

    out = [f"## Benchmark run {date}", ""]
    out.append(f"- CPU: {cpu_description()}")
    out.append(f"- GPU: {gpu_description()}")
    out.append(f"- Date: {date}")
    out.append(f"- Commit: {commit_description()}")
    build = build_description(build_dir)
    if build:
        out.append(f"- Build: {build}")
    if command:
        out.append(f"- Command: `{command}`")
    if load_avg:
        out.append("- Load average when the run started: " + ", ".join(f"{x:.2f}" for x in load_avg))
    out.append("- time = per iteration: wall clock for `/real_time` rows, CUDA events for `/manual_time` rows, "
               "CPU time of the main thread otherwise. CPU time = the main thread's CPU time per iteration; on an "
               "OpenMP benchmark, a time well above it means the other threads were waited for (a busy machine).")
    for path, context, benchmarks in loaded:
        name = os.path.basename(path)
        name = name[:-5] if name.endswith(".json") else name
        out += ["", f"### {name}", ""]
        try:
            with open(path + ".args") as f:
                out += [f"`{f.read().strip()}`", ""]
        except OSError:
            pass
        if context is None:
            out.append(f"**failed**: {benchmarks}")
        elif not benchmarks:
            out.append("no benchmark matched")
        else:
            out += table(benchmarks)
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="Google Benchmark JSON files, one per binary")
    parser.add_argument("--command", default="", help="the command that produced the files, shown verbatim")
    parser.add_argument("--build-dir", default="", help="build folder (its CMakeCache.txt gives the build type)")
    parser.add_argument("--append", metavar="FILE", help="also append the section to FILE")
    args = parser.parse_args()
    text = section(args.results, args.command, args.build_dir)
    sys.stdout.write(text)
    if args.append:
        with open(args.append, "a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
