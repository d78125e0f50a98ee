#!/usr/bin/env python3
"""Cross-check spikegrad's APGD-CE, APGD-T, FAB-T, Square and CW-L2 against torchattacks on one checkpoint.

A developer script (issue 12, item 5): the engine, its build and its tests never use it. The checkpoint is
loaded into the independent PyTorch re-implementation of `torch_reference.py` (strict state-dict load, the
triangle surrogate as a torch.autograd.Function), wrapped so that it returns the mean over T of the logits,
and attacked by torchattacks 3.5 with the same budgets; `spikegrad attack` attacks the same first N test
examples. Both sides' robust accuracies are printed side by side. The attacks are stochastic (random
starts, Square's search) and their implementations differ in documented details (README, "AutoAttack"
row), so agreement means "within a few points", not equality; `--seeds` repeats the torchattacks side to
show its spread.

    python3 scripts/compare/autoattack_crosscheck.py --checkpoint runs/demo/best.safetensors --n 200
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch_reference as ref  # noqa: E402


class MeanLogits(torch.nn.Module):
    """The spiking net as the attacks see it: [0,1] images -> mean over T of the logits."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).mean(0)


def torch_robust_accuracy(model, attack, x, y, batch: int, eps: float | None) -> float:
    correct = 0
    for i in range(0, len(x), batch):
        adv = attack(x[i:i + batch], y[i:i + batch]).detach()
        if eps is not None and float((adv - x[i:i + batch]).abs().max()) > eps + 1e-6:
            raise SystemExit(f"{attack.__class__.__name__} left the eps-ball")
        with torch.no_grad():
            correct += int((model(adv).argmax(1) == y[i:i + batch]).sum())
    return 100.0 * correct / len(x)


def spikegrad_robust_accuracy(binary: Path, args, names: list[str]) -> dict[str, float]:
    cmd = [str(binary), "attack", "--checkpoint", str(args.checkpoint), "--device", "cpu", "--no-progress",
           "--attacks", ",".join(names), "--eps", args.eps, "--attack-subset", str(args.n),
           "--apgd-iterations", str(args.apgd_iterations), "--fab-iterations", str(args.fab_iterations),
           "--square-queries", str(args.square_queries), "--cw-steps", str(args.cw_steps), "--eval-batch", str(args.batch)]
    if args.data_dir:
        cmd += ["--data-dir", str(args.data_dir)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = {}
    for line in out.splitlines():
        m = re.match(r"\| ([a-z0-9-]+) \| [^|]* \| (\d+) \| ([0-9.]+) \|", line)
        if m:
            rows[m.group(1)] = float(m.group(3))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--binary", type=Path, default=Path(__file__).resolve().parents[2] / "build/bin/spikegrad")
    p.add_argument("--data-dir", type=Path, help="dataset folder (default: spikegrad's default for the dataset)")
    p.add_argument("--n", type=int, default=200, help="first N test examples")
    p.add_argument("--eps", default="8/255")
    p.add_argument("--apgd-iterations", type=int, default=100)
    p.add_argument("--fab-iterations", type=int, default=100)
    p.add_argument("--square-queries", type=int, default=5000)
    p.add_argument("--cw-steps", type=int, default=50)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--seeds", type=int, default=1, help="torchattacks runs per stochastic attack (their spread)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tolerance", type=float, default=3.0, help="points of robust accuracy; beyond it: exit 1")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    import torchattacks  # a developer dependency only

    loaded = ref.load_checkpoint(args.checkpoint)
    info = ref.DATASETS[loaded.dataset]
    data_dir = args.data_dir or Path(info.default_dir)
    images, labels = ref.load_test_split(loaded.dataset, data_dir, args.n)
    x = ref.to_unit_float(images)
    y = torch.from_numpy(labels)
    model = MeanLogits(loaded.net).eval()
    num, den = (float(v) for v in args.eps.split("/")) if "/" in args.eps else (float(args.eps), 1.0)
    eps = num / den
    k = info.classes

    def make(name: str, seed: int):
        if name == "apgd-ce":
            return torchattacks.APGD(model, eps=eps, steps=args.apgd_iterations, n_restarts=1, seed=seed, loss="ce")
        if name == "apgd-t":
            return torchattacks.APGDT(model, eps=eps, steps=args.apgd_iterations, n_restarts=1, seed=seed, n_classes=k)
        if name == "fab-t":
            return torchattacks.FAB(model, eps=eps, steps=args.fab_iterations, n_restarts=1, seed=seed,
                                    multi_targeted=True, n_classes=k)
        if name == "square":
            return torchattacks.Square(model, eps=eps, n_queries=args.square_queries, n_restarts=1, seed=seed)
        return torchattacks.CW(model, c=1, kappa=0, steps=args.cw_steps, lr=0.01)

    names = ["apgd-ce", "apgd-t", "fab-t", "square", "cw"]
    with torch.no_grad():
        clean = 100.0 * float((model(x).argmax(1) == y).float().mean())
    t0 = time.time()
    ours = spikegrad_robust_accuracy(args.binary, args, names)
    ours_s = time.time() - t0
    print(f"checkpoint {args.checkpoint} ({loaded.dataset}, {args.n} test examples, eps {args.eps}); "
          f"clean accuracy (PyTorch reference) {clean:.2f}%")
    print(f"spikegrad attack: {ours_s:.0f} s")
    print("| attack | spikegrad robust % | torchattacks robust % (per seed) | difference |")
    print("|---|---|---|---|")
    worst = 0.0
    for name in names:
        theirs = []
        t0 = time.time()
        for seed in range(args.seeds if name != "cw" else 1):
            theirs.append(torch_robust_accuracy(model, make(name, seed), x, y, args.batch, None if name == "cw" else eps))
        spent = time.time() - t0
        mean = float(np.mean(theirs))
        diff = ours[name] - mean
        worst = max(worst, abs(diff))
        print(f"| {name} | {ours[name]:.2f} | {', '.join(f'{t:.2f}' for t in theirs)} ({spent:.0f} s) | {diff:+.2f} |")
    print(f"largest difference {worst:.2f} points (tolerance {args.tolerance})")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
