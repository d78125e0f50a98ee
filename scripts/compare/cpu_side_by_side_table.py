#!/usr/bin/env python3
"""Helpers of scripts/compare/cpu_side_by_side.sh (standard library only; no torch).

  measure RSS_FILE -- CMD...   runs CMD and writes its max resident set size in KiB (getrusage of the waited-for
                               child, the figure GNU time's %M gives) to RSS_FILE; exits with CMD's status. Both
                               spikegrad and PyTorch are measured through it, each in a fresh process.
  table --runs DIR ...         reads DIR/<case>.r<round>.<framework>.{json,rss,rc} and prints the markdown report:
                               per case the median over rounds of images/s, the ratios, and the peak memory.

Run files: framework `spikegrad` is a Google Benchmark JSON of bench_train_step (one BM_TrainStepCpu benchmark);
`eager` and `compile` are the last stdout line of cpu_torch_step.py (a JSON object). `.rc` holds the exit status
(124/137: the time limit).
"""
from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import subprocess
import sys
from pathlib import Path

FRAMEWORKS = ("spikegrad", "eager", "compile")
# The issue's targets (issue 19): spikegrad's images/s over PyTorch eager's; for VGGSNN also a lower peak memory.
TARGETS = {
    "vggsnn_b16": (1.3, True),
    "vggsnn_b64": (1.3, True),
    "small_cnn": (1.5, False),
    "small_cnn_tmi": (2.0, False),
}
CASE_TITLES = {
    "vggsnn_b16": "VGGSNN 3x32x32, B=16, T=4, CE",
    "vggsnn_b64": "VGGSNN 3x32x32, B=64, T=4, CE",
    "small_cnn": "small_cnn 1x28x28, B=64, T=4, CE",
    "small_cnn_tmi": "small_cnn 1x28x28, B=64, T=4, CE + 0.05 MI",
}


def measure(argv) -> int:
    if len(argv) < 3 or argv[1] != "--":
        sys.exit("usage: cpu_side_by_side_table.py measure RSS_FILE -- CMD...")
    rc = subprocess.call(argv[2:])
    Path(argv[0]).write_text(f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\n")
    return rc


def read_run(runs: Path, case: str, rnd: int, framework: str) -> dict | None:
    """One process's result: img_per_s, ms_per_step, steps, max_rss_MiB (+ framework extras), or
    {"error": why} when it failed, or None when it did not run."""
    stem = runs / f"{case}.r{rnd}.{framework}"
    rc_file = Path(f"{stem}.rc")
    if not rc_file.exists():
        return None
    rc = int(rc_file.read_text().strip() or 1)
    rss = Path(f"{stem}.rss")
    res: dict = {"max_rss_MiB": int(rss.read_text()) / 1024.0} if rss.exists() and rss.read_text().strip() else {}
    if rc in (124, 137):
        return {"error": "time limit", **res}
    try:
        text = Path(f"{stem}.json").read_text()
        if framework == "spikegrad":
            bench = [b for b in json.loads(text)["benchmarks"] if b.get("run_type", "iteration") == "iteration"][0]
            if bench.get("error_occurred"):
                return {"error": bench.get("error_message", "benchmark failed"), **res}
            ms = bench["real_time"] * {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[bench["time_unit"]]
            res.update(img_per_s=bench["img/s"], ms_per_step=ms, steps=bench["iterations"],
                       alloc_peak_MiB=bench["state_MiB"] + bench["step_peak_MiB"])
        else:
            line = [ln for ln in text.splitlines() if ln.startswith("{")][-1]
            d = json.loads(line)
            res.update(img_per_s=d["img_per_s"], ms_per_step=d["ms_per_step_mean"], steps=d["steps"],
                       warmup_s=d["warmup_s"], rss_after_import_MiB=d["rss_after_import_MiB"], torch=d["torch"])
    except (OSError, ValueError, KeyError, IndexError) as e:
        return {"error": f"exit status {rc}, no result ({type(e).__name__})", **res}
    if rc != 0:
        return {"error": f"exit status {rc}", **res}
    return res


def median_of(runs: list[dict], key: str):
    values = [r[key] for r in runs if key in r]
    return statistics.median(values) if values else None


def fmt(v, spec=".1f", missing="–"):
    return missing if v is None else format(v, spec)


def table(args) -> str:
    runs_dir = Path(args.runs)
    rounds = sorted({int(m.group(1)) for p in runs_dir.glob("*.rc") if (m := re.search(r"\.r(\d+)\.", p.name))})
    summary, detail, notes = [], [], []
    for case in args.case:
        by_fw = {}
        for fw in FRAMEWORKS:
            results = [(r, read_run(runs_dir, case, r, fw)) for r in rounds]
            results = [(r, x) for r, x in results if x is not None]
            for r, x in results:
                if "error" in x:
                    notes.append(f"{case}, round {r}, {fw}: {x['error']}")
                detail.append(f"| {case} | {r} | {fw} | {fmt(x.get('img_per_s'), '.2f')} | "
                              f"{fmt(x.get('ms_per_step'), '.0f')} | {fmt(x.get('steps'), 'd')} | "
                              f"{fmt(x.get('max_rss_MiB'), '.0f')} | {fmt(x.get('warmup_s'), '.1f')} |")
            by_fw[fw] = [x for _, x in results if "error" not in x]
            if results and len(results) < len(rounds):
                notes.append(f"{case}, {fw}: not run in {len(rounds) - len(results)} of {len(rounds)} rounds "
                             "(a failed compile is not retried)")
        sg, eager, comp = (median_of(by_fw[fw], "img_per_s") for fw in FRAMEWORKS)
        rss = {fw: median_of(by_fw[fw], "max_rss_MiB") for fw in FRAMEWORKS}
        ratio_e = sg / eager if sg and eager else None
        ratio_c = sg / comp if sg and comp else None
        target, with_memory = TARGETS.get(case, (None, False))
        if target is None or ratio_e is None:
            verdict = "–"
        else:
            fast = ratio_e >= target
            lighter = rss["spikegrad"] is not None and rss["eager"] is not None and rss["spikegrad"] < rss["eager"]
            verdict = (f"≥ {target}×{' + less memory' if with_memory else ''}: "
                       f"{'met' if fast and (lighter or not with_memory) else 'not met'}")
        summary.append(
            f"| {CASE_TITLES.get(case, case)} | {fmt(sg, '.2f')} | {fmt(eager, '.2f')} | {fmt(ratio_e, '.2f')} | "
            f"{fmt(comp, '.2f')} | {fmt(ratio_c, '.2f')} | {fmt(rss['spikegrad'], '.0f')} | "
            f"{fmt(rss['eager'], '.0f')} | "
            f"{fmt(rss['compile'], '.0f')} | {fmt(median_of(by_fw['spikegrad'], 'alloc_peak_MiB'), '.0f')} | "
            f"{fmt(median_of(by_fw['eager'], 'rss_after_import_MiB'), '.0f')} | {verdict} |")
    out = [f"# CPU side by side: spikegrad vs PyTorch ({args.date})", ""]
    out += [f"- {k}: {v}" for k, v in (("CPU", args.cpu), ("threads", args.threads), ("commit", args.commit),
                                         ("torch", args.torch), ("rounds", len(rounds)),
                                         ("load average (1/5/15 min) before / after", args.load))]
    out += ["", "img/s: median over rounds (each round runs every framework once, in a fresh process, in the order "
            "spikegrad, eager, compile); ratio = spikegrad img/s / PyTorch img/s. Max RSS: the process's peak "
            "resident memory (getrusage of the child, the same for both). spikegrad alloc: its allocator's peak "
            "(state + step_peak); PyTorch floor: the RSS right after `import torch`.", "",
            "| case | spikegrad img/s | eager img/s | spikegrad / eager | compile img/s | spikegrad / compile | "
            "spikegrad max RSS MiB | eager max RSS MiB | compile max RSS MiB | spikegrad alloc peak MiB | "
            "PyTorch floor MiB | target vs eager |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|", *summary, "",
            "Per process (compile's warm-up includes the compilation; later rounds reuse TorchInductor's disk cache):",
            "", "| case | round | framework | img/s | ms/step | timed steps | max RSS MiB | warm-up s |",
            "|---|---:|---|---:|---:|---:|---:|---:|", *detail]
    if notes:
        out += ["", "Failed or skipped:", *[f"- {n}" for n in notes]]
    if args.command:
        out += ["", "Commands:", "", *[f"    {c}" for c in args.command]]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["measure"]:
        return measure(argv[1:])
    p = argparse.ArgumentParser(description="markdown report of cpu_side_by_side.sh")
    p.add_argument("mode", choices=["table"])
    p.add_argument("--runs", required=True, help="folder of <case>.r<round>.<framework>.{json,rss,rc}")
    p.add_argument("--case", action="append", required=True, help="case names, in table order")
    for name in ("date", "cpu", "threads", "commit", "torch", "load"):
        p.add_argument(f"--{name}", default="unknown")
    p.add_argument("--command", action="append", default=[])
    print(table(p.parse_args(argv)), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
