#!/usr/bin/env python3
"""One spiking-model training step in plain PyTorch on the CPU, timed like spikegrad's BM_TrainStepCpu.

The PyTorch half of the CPU side-by-side (scripts/compare/cpu_side_by_side.sh, scripts/compare/README.md); a
developer tool, never a dependency of spikegrad. It needs torch, numpy and safetensors (torch_reference.py
imports them); with --compile also a C++ compiler for TorchInductor.

The step, as bench/bench_train_step.cpp runs it on the CPU:
  - the model is torch_reference.SpikingNet (imported, not copied): `vggsnn` for 3x32x32 inputs with CIFAR-10
    normalisation, `small_cnn` for 1x28x28 inputs with Fashion-MNIST normalisation, 10 classes, T time steps,
    direct encoding, Conv(bias) + BatchNorm (train mode) over the merged T*B batch, and spikegrad's default LIF
    (h = 0.5*v + x, spike iff h > 1, v = (1 - s)*h with the gradient through the reset, triangle surrogate
    of half-width 1) written as a Python loop over T, the way a PyTorch user writes it without SpikingJelly;
  - loss CE(mean over T of the logits, labels); with --tmi + 0.05 * I(X;Z), the KDE mutual information of the
    reference spec (sec. 1) between the x255 firing-rate sequences of the first and the last conv spiking layer
    (spikegrad's default taps), computed by sj_vggsnn_step.kde_mi (imported; checked there against the spec's
    table with --check-mi);
  - Adam(lr 1e-3) with PyTorch's default implementation (foreach), zero_grad(set_to_none=True) as spikegrad
    drops its gradients every step.
Inputs are synthetic (uniform [0,1) images, uniform labels), made once: as bench_train_step, no data loading.

--compile wraps forward + loss in torch.compile (TorchInductor's C++/OpenMP backend; backward compiled through
AOTAutograd, the Adam step stays eager). Compilation happens in the warm-up steps and is reported separately.

Memory: the caller measures the process's max RSS from outside (/usr/bin/time), the same way for spikegrad;
this script adds ru_maxrss right after `import torch` (the interpreter + libtorch floor) and after the run.

Prints one JSON object (the last line of stdout).
Usage: cpu_torch_step.py --model vggsnn|small_cnn [--batch 16] [--time-steps 4] [--steps 3] [--warmup 1]
                         [--tmi] [--threads N] [--compile]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
KIB_PER_MIB = 1024.0  # ru_maxrss is in KiB on Linux

# The dataset each model is measured on in bench_train_step (torch_reference.DATASETS keys).
MODEL_DATASET = {"vggsnn": "cifar10", "small_cnn": "fashion-mnist"}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, choices=sorted(MODEL_DATASET))
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--time-steps", type=int, default=4)
    p.add_argument("--steps", type=int, default=3, help="timed steps")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first (and torch.compile's compilation)")
    p.add_argument("--tmi", action="store_true", help="loss CE + 0.05 * KDE-MI(first, last conv spikes)")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    p.add_argument("--compile", action="store_true", help="torch.compile the forward pass and the loss")
    p.add_argument("--seed", type=int, default=2026)
    return p.parse_args(argv)


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB_PER_MIB


def build(args):
    """The model, its first and last conv LIF (the TMI taps X and Z), and the synthetic batch."""
    import torch

    sys.path.insert(0, HERE)
    from torch_reference import DATASETS, ConvBNLIF, NeuronSpec, SpikingNet

    info = DATASETS[MODEL_DATASET[args.model]]
    torch.manual_seed(args.seed)
    net = SpikingNet(args.model, info.channels, info.size, info.classes, args.time_steps, info.mean, info.std,
                     NeuronSpec())
    net.train()
    conv_lifs = [layer.lif for layer in net.features if isinstance(layer, ConvBNLIF)]
    images = torch.rand(args.batch, info.channels, info.size, info.size)
    labels = torch.randint(0, info.classes, (args.batch,))
    return net, (conv_lifs[0], conv_lifs[-1]), images, labels


def make_loss(args, net, taps):
    """loss(images, labels) -> (total, mi or None). The tapped spikes are read through forward hooks that
    hand them to the loss inside the same call, so nothing outlives the step (as spikegrad releases its taps)."""
    import torch.nn.functional as F

    sys.path.insert(0, HERE)
    from sj_vggsnn_step import MI_LAMBDA, firing_rate_255, kde_mi

    tapped = {}
    if args.tmi:
        for name, lif in zip(("x", "z"), taps):
            lif.register_forward_hook(lambda _m, _inp, out, name=name: tapped.__setitem__(name, out))

    def loss_fn(images, labels):
        logits = net(images)  # (T, B, K)
        loss = F.cross_entropy(logits.mean(0), labels)
        if not args.tmi:
            return loss, None
        mi = kde_mi(firing_rate_255(tapped.pop("x")), firing_rate_255(tapped.pop("z")))[0]
        return loss + MI_LAMBDA * mi, mi

    return loss_fn


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    rss_after_import = max_rss_mib()
    if args.threads:
        torch.set_num_threads(args.threads)
    net, taps, images, labels = build(args)
    loss_fn = make_loss(args, net, taps)
    if args.compile:
        loss_fn = torch.compile(loss_fn)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step():
        # torch_reference's LIFs count their calls for its potential tracer; resetting the count outside the
        # compiled function keeps it equal at every entry, else torch.compile recompiles on each step (an int
        # attribute of a module is a guard).
        net.tracer.begin(False)
        loss, mi = loss_fn(images, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss, mi

    warm0 = time.perf_counter()
    loss = mi = None
    first_loss = None
    for _ in range(args.warmup):
        loss, mi = step()
        if first_loss is None:
            first_loss = loss.item()
    warmup_s = time.perf_counter() - warm0

    times_ms = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        loss, mi = step()
        times_ms.append(1e3 * (time.perf_counter() - t0))
    if first_loss is None:
        first_loss = loss.item()

    mean_ms = sum(times_ms) / len(times_ms)
    out = {
        "framework": "pytorch compile" if args.compile else "pytorch eager",
        "model": args.model,
        "loss": "CE+0.05*MI" if args.tmi else "CE",
        "batch": args.batch,
        "time_steps": args.time_steps,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "warmup": args.warmup,
        "warmup_s": warmup_s,
        "steps": args.steps,
        "ms_per_step": times_ms,
        "ms_per_step_mean": mean_ms,
        "ms_per_step_median": statistics.median(times_ms),
        "img_per_s": args.batch / (mean_ms / 1e3),
        "rss_after_import_MiB": rss_after_import,
        "max_rss_MiB": max_rss_mib(),
        "params": sum(p.numel() for p in net.parameters()),
        "loss_first": first_loss,
        "loss_last": loss.item(),
        "mi_last": mi.item() if mi is not None else None,
    }
    print(json.dumps(out))
    if not math.isfinite(out["loss_last"]):
        print("cpu_torch_step.py: the training loss is not finite", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
