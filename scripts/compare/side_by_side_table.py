#!/usr/bin/env python3
"""Markdown table of the side-by-side run: spikegrad's bench_train_step JSON vs sj_vggsnn_step.py's JSON lines.

One row per loss (CE, CE+0.05*MI) and SpikingJelly version: images/s of both and their ratio
(spikegrad / PyTorch+SJ, target >= 1.5), step peak memory of both (what a step allocates on top of the state
that lives across steps) and their ratio (target <= 0.6), total peak (state + step) of both and their ratio.
A development script (Python 3 standard library only) used by scripts/compare/side_by_side.sh.
"""
import argparse
import datetime
import json
import shutil
import subprocess
import sys

SPEED_TARGET = 1.5
MEMORY_TARGET = 0.6


def gpu():
    if shutil.which("nvidia-smi") is None:
        return "unknown (no nvidia-smi)", "unknown"
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30).stdout.strip().splitlines()
    except (OSError, subprocess.SubprocessError):
        return "unknown", "unknown"
    if not out:
        return "unknown", "unknown"
    name, _, driver = out[0].partition(",")
    return name.strip(), driver.strip()


def spikegrad_rows(path, batch, steps):
    """{"CE": {...}, "CE+0.05*MI": {...}} from Google Benchmark JSON (mean over repetitions), or an error text."""
    try:
        with open(path) as f:
            text = f.read()
        if not text.strip():
            return {}, ("spikegrad wrote no results (no benchmark matched: bench_train_step registers B 16 and 64 "
                        "with T 4; or it did not run)")
        data = json.loads(text)
    except (OSError, json.JSONDecodeError) as e:
        return {}, f"spikegrad results unreadable ({e})"
    rows = {}
    for b in data.get("benchmarks", []):
        if b.get("run_type", "iteration") != "iteration":
            continue
        name = b.get("run_name", b.get("name", ""))
        for key, loss in ((f"vggsnn_sj/B:{batch}/T:{steps}/", "CE"), (f"vggsnn_sj_tmi/B:{batch}/T:{steps}/", "CE+0.05*MI")):
            if key in name:
                if b.get("error_occurred") or b.get("skipped"):
                    rows.setdefault(loss, []).append({"error": b.get("error_message") or b.get("skip_message") or "error"})
                else:
                    step_peak = b.get("step_peak_MiB")
                    state = b.get("state_MiB")
                    rows.setdefault(loss, []).append({
                        "img_per_s": b.get("img/s"), "ms": b.get("real_time"), "unit": b.get("time_unit", "ns"),
                        "step_peak_MiB": step_peak, "state_MiB": state,
                        "peak_MiB": step_peak + state if step_peak is not None and state is not None else None,
                        "reserved_MiB": b.get("reserved_MiB"), "iterations": b.get("iterations")})
    merged = {}
    for loss, runs in rows.items():
        good = [r for r in runs if "error" not in r]
        if not good:
            merged[loss] = runs[0]
            continue
        merged[loss] = {k: (sum(r[k] for r in good) / len(good) if isinstance(good[0][k], (int, float)) else good[0][k])
                        for k in good[0]}
    return merged, None


def fmt(v, digits=1):
    return "—" if v is None else f"{v:,.{digits}f}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def table(sg, sj, batch, steps):
    lines = ["| loss | PyTorch + SpikingJelly (backend) | spikegrad img/s | PyTorch+SJ img/s | speed ratio (target ≥ 1.5) "
             "| spikegrad step peak MiB | PyTorch+SJ step peak MiB | step-peak ratio (target ≤ 0.6) "
             "| spikegrad total peak MiB | PyTorch+SJ total peak MiB | total-peak ratio | both targets met |",
             "|" + "---|" * 12]
    verdicts = []
    for run in sj:
        loss = run.get("loss", "?")
        mine = sg.get(loss, {"error": "no spikegrad result"})
        who = (f"SJ {run.get('spikingjelly', run.get('site', '?'))} ({run.get('sj_backend', '?')}), "
               f"torch {run.get('torch', '?')}")
        if run.get("failed"):
            lines.append(f"| {loss} | {run.get('site', '?')}: failed (exit {run.get('exit_status')}) |" + " |" * 10)
            continue
        if run.get("batch") != batch or run.get("time_steps") != steps:
            who += f" [B={run.get('batch')}, T={run.get('time_steps')}!]"
        if "error" in mine:
            lines.append(f"| {loss} | {who} | {mine['error']} | {fmt(run.get('img_per_s'))} | — | — | "
                         f"{fmt(run.get('step_peak_MiB'))} | — | — | {fmt(run.get('peak_MiB'))} | — | — |")
            continue
        speed = ratio(mine["img_per_s"], run.get("img_per_s"))
        step_mem = ratio(mine["step_peak_MiB"], run.get("step_peak_MiB"))
        total_mem = ratio(mine["peak_MiB"], run.get("peak_MiB"))
        met = speed is not None and step_mem is not None and speed >= SPEED_TARGET and step_mem <= MEMORY_TARGET
        verdicts.append(met)
        lines.append(
            f"| {loss} | {who} | {fmt(mine['img_per_s'])} | {fmt(run.get('img_per_s'))} | {fmt(speed, 2)}× | "
            f"{fmt(mine['step_peak_MiB'])} | {fmt(run.get('step_peak_MiB'))} | {fmt(step_mem, 2)}× | "
            f"{fmt(mine['peak_MiB'])} | {fmt(run.get('peak_MiB'))} | {fmt(total_mem, 2)}× | "
            f"{'yes' if met else 'no'} |")
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spikegrad", required=True, help="bench_train_step --benchmark_out JSON")
    p.add_argument("--sj", required=True, help="JSON lines from sj_vggsnn_step.py")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--time-steps", type=int, default=4)
    p.add_argument("--checks", help="JSON lines of sj_vggsnn_step.py --check-mi / --check-neuron")
    p.add_argument("--commit", default="unknown")
    p.add_argument("--command", action="append", default=[], help="a command of the run, shown verbatim")
    args = p.parse_args()

    sg, error = spikegrad_rows(args.spikegrad, args.batch, args.time_steps)
    sj = []
    try:
        with open(args.sj) as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        sj.append(json.loads(line))
                    except json.JSONDecodeError:
                        sj.append({"failed": True, "site": "unparsable line", "exit_status": -1})
    except OSError as e:
        error = (error + "; " if error else "") + f"PyTorch+SJ results unreadable ({e})"
    name, driver = gpu()
    out = [f"## spikegrad vs PyTorch + SpikingJelly: VGGSNN training step, B={args.batch}, T={args.time_steps}", ""]
    out.append(f"- Device: {name} (driver {driver})")
    out.append(f"- Date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
    out.append(f"- spikegrad commit: {args.commit}")
    first = next((r for r in sj if not r.get("failed")), {})
    if first:
        out.append(f"- PyTorch {first.get('torch')} (CUDA {first.get('cuda')}, cuDNN {first.get('cudnn')}), "
                   f"cudnn.benchmark={first.get('cudnn_benchmark')}, TF32={first.get('tf32')}, "
                   f"{first.get('warmup')} warm-up + {first.get('steps')} timed steps (CUDA events, mean)")
    for c in args.command:
        out.append(f"- Command: `{c}`")
    out.append("- Step: VGGSNN 3x32x32, 10 classes, LIF (h = 0.5 v + x, hard reset 0, gradient through the reset, "
               "ATan α=2), CE on the mean over T of the logits (+ 0.05·KDE-MI of first/last conv firing rates), "
               "Adam 1e-3, synthetic inputs. Ratios are spikegrad / PyTorch+SJ. step peak = peak allocated during the "
               "timed steps minus what was allocated before them; total peak = state + step peak.")
    if error:
        out.append(f"- **Problem:** {error}")
    out.append("")
    out += table(sg, sj, args.batch, args.time_steps)
    for loss, r in sg.items():
        if "error" in r:
            out.append("")
            out.append(f"spikegrad {loss}: **{r['error']}**")
        else:
            out.append("")
            out.append(f"spikegrad {loss}: {fmt(r['ms'], 3)} {r['unit']}/step over {r['iterations']:.0f} iterations, "
                       f"state {fmt(r['state_MiB'])} MiB, reserved {fmt(r['reserved_MiB'])} MiB")
    for r in sj:
        if not r.get("failed"):
            out.append("")
            out.append(f"PyTorch+SJ {r.get('spikingjelly')} {r.get('loss')}: mean {fmt(r.get('ms_per_step_mean'), 3)} ms/step "
                       f"(median {fmt(r.get('ms_per_step_median'), 3)}), state {fmt(r.get('state_MiB'))} MiB, "
                       f"reserved {fmt(r.get('reserved_MiB'))} MiB, loss {r.get('loss_first'):.4f} → {r.get('loss_last'):.4f}")
    if args.checks:
        out += ["", "Checks run in the same session:"]
        try:
            with open(args.checks) as f:
                for line in f:
                    if line.strip():
                        out.append(f"- `{line.strip()}`")
        except OSError as e:
            out.append(f"- checks file unreadable ({e})")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
