#!/usr/bin/env python3
"""One VGGSNN training step in PyTorch + SpikingJelly, timed and measured like spikegrad's bench_train_step.

A measuring script for the side-by-side comparison (scripts/compare/README.md, scripts/compare/side_by_side.sh),
never a dependency of spikegrad. It needs torch, numpy, safetensors (torch_reference.py imports them) and
spikingjelly; on a GPU, SpikingJelly 0.0.0.0.14's 'cupy' backend needs cupy.

The step, as spikegrad's BM_TrainStepCuda/vggsnn_sj[_tmi] runs it:
  - VGGSNN for 3x32x32 inputs, 10 classes, T time steps (default 4), CIFAR-10 normalisation inside the model,
    direct encoding (the image repeated T times), Conv(bias) + BatchNorm (train mode) over the merged T*B batch:
    the architecture is torch_reference.SpikingNet("vggsnn"), imported, with each LIF replaced by
  - SpikingJelly's multi-step LIFNode(tau=2.0, decay_input=False, v_threshold=1.0, v_reset=0.0,
    detach_reset=False, surrogate ATan(alpha=2.0)): h = v - v/tau + x = 0.5*v + x, spike = [h >= 1],
    v = (1 - s)*h (hard reset to 0, gradient through the reset), surrogate g'(u) = (a/2)/(1 + (pi/2*a*u)^2).
    spikegrad fires at h > 1 (strict); the two differ only when h == 1.0 exactly, irrelevant for timing.
  - loss CE(mean over T of the logits, labels), with --tmi + 0.05 * I(X;Z): the KDE mutual information of the
    reference spec (sec. 1) between the firing-rate sequences (x255) of the first and the last conv spiking layer;
  - Adam(lr 1e-3), zero_grad (set_to_none, as spikegrad drops its gradients), SpikingJelly's reset_net.
Inputs are synthetic (uniform [0,1) images, uniform labels), made once on the device.

Memory (CUDA): after the warm-up steps, state_MiB = torch.cuda.memory_allocated() (parameters, BN buffers, Adam
state, inputs, the last loss), then reset_peak_memory_stats(); step_peak_MiB = max_memory_allocated() over the
timed steps - state_MiB (what a step adds on top of the state: spikegrad's definition); peak_MiB = the max itself.

Prints one JSON object. `--check-mi` checks the KDE-MI against the reference values table of the spec instead;
`--check-neuron` compares one step (loss, gradients) with a hand-written spikegrad LIF on the same weights.
Usage: sj_vggsnn_step.py [--batch 64] [--time-steps 4] [--steps 50] [--warmup 10] [--tmi] [--device cuda|cpu]
                         [--backend cupy|torch (SJ 0.0.0.0.x) | auto|cuda|triton|torch (SJ >= 2)]
                         [--no-cudnn-benchmark] [--allow-tf32] [--deterministic] [--fused-adam]
                         [--check-mi] [--check-neuron]
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

MI_LAMBDA = 0.05
KDE_SIGMA = 0.32   # the spec's "sigma = 2 * 0.4**2", used as the kernel's standard deviation
KDE_EPS = 1e-10
KDE_BINS = 256     # linspace(0, 255, 256): centres 0, 1, ..., 255


def kde_mi(x, z):
    """TMI's KDE mutual information (reference spec sec. 1.3), batch mean.

    x, z: (B, T) rate sequences in x255 units. Per sample, the T values are the samples of the distribution:
    K[t, i] = exp(-0.5 * ((v_t - i) / 0.32)^2) over bins i = 0..255; marginals mean_t K normalised over the bins,
    joint sum_t Kx[t, i] Kz[t, j] normalised over (i, j); entropies in bits with eps inside the log;
    MI = H_x + H_z - H_xz, averaged over the batch. Returns (mi, h_x, h_z, h_xz) with per-sample entropies."""
    import torch

    bins = torch.linspace(0, 255, KDE_BINS, dtype=x.dtype, device=x.device)

    def kernel(v):
        return torch.exp(-0.5 * ((v.unsqueeze(-1) - bins) / KDE_SIGMA) ** 2)  # (B, T, 256)

    def entropy(p, dims):
        return -(p * torch.log2(p + KDE_EPS)).sum(dim=dims)

    kx, kz = kernel(x), kernel(z)
    mx, mz = kx.mean(dim=1), kz.mean(dim=1)                                   # (B, 256)
    px = mx / (mx.sum(dim=1, keepdim=True) + KDE_EPS)
    pz = mz / (mz.sum(dim=1, keepdim=True) + KDE_EPS)
    joint = torch.matmul(kx.transpose(1, 2), kz)                              # (B, 256, 256)
    pxz = joint / (joint.sum(dim=(1, 2), keepdim=True) + KDE_EPS)
    h_x, h_z, h_xz = entropy(px, 1), entropy(pz, 1), entropy(pxz, (1, 2))
    return (h_x + h_z - h_xz).mean(), h_x, h_z, h_xz


def firing_rate_255(spikes):
    """(T, B, C, H, W) spikes -> (B, T): 255 * mean over C, H, W (the spec's mean over H,W then C)."""
    return 255.0 * spikes.flatten(2).mean(dim=2).transpose(0, 1)


# Reference values table of the spec (sec. 1.3): x, z (x255 units), MI, H_x, H_z, H_xz.
MI_TABLE = [
    ([100, 100, 100, 100], [10, 20, 30, 40], 0.000000, 0.126834, 2.126834, 2.253669),
    ([10, 20, 30, 40], [50, 60, 70, 80], 2.000000, 2.126834, 2.126834, 2.253669),
    ([10, 10, 30, 30], [50, 50, 70, 70], 1.000000, 1.126834, 1.126834, 1.253669),
    ([10, 10, 30, 30], [50, 70, 50, 70], 0.000000, 1.126834, 1.126834, 2.253669),
    ([10.5, 20.5, 30.5, 40.5], [50, 60, 70, 80], 2.000000, 3.000891, 2.126834, 3.127726),
    ([10, 10.3, 10.6, 10.9], [50, 60, 70, 80], 0.684474, 1.023444, 2.126834, 2.465805),
    ([10.2, 20.4, 30.1, 40.3], [50.2, 50.6, 70.1, 70.4], 1.40519992, None, None, None),
]
MI_GRAD_X = [-0.112358, 0.238108, -0.216598, 0.390495]
MI_GRAD_Z = [-0.596150, 0.655185, -0.373731, 0.844860]
MI_BATCH2 = 0.70259996


def check_mi() -> int:
    """Compares kde_mi with the spec's table (float64 and float32) and its finite-difference gradients."""
    import torch

    worst = {}
    ok = True
    for dtype, tol in ((torch.float64, 1e-6), (torch.float32, 2e-5)):
        err = 0.0
        for xs, zs, mi, hx, hz, hxz in MI_TABLE:
            x = torch.tensor([xs], dtype=dtype)
            z = torch.tensor([zs], dtype=dtype)
            got = [float(v.reshape(-1)[0]) for v in kde_mi(x, z)]
            for g, want in zip(got, (mi, hx, hz, hxz)):
                if want is not None:
                    err = max(err, abs(g - want))
        x = torch.tensor([MI_TABLE[-1][0], [0, 0, 0, 0]], dtype=dtype, requires_grad=True)
        z = torch.tensor([MI_TABLE[-1][1], [12.75, 25.5, 38.25, 51]], dtype=dtype, requires_grad=True)
        mi2 = kde_mi(x, z)[0]
        err = max(err, abs(float(mi2.detach()) - MI_BATCH2))
        xg = x[:1].detach().clone().requires_grad_(True)
        zg = z[:1].detach().clone().requires_grad_(True)
        kde_mi(xg, zg)[0].backward()
        gerr = max(max(abs(a - b) for a, b in zip(xg.grad[0].tolist(), MI_GRAD_X)),
                   max(abs(a - b) for a, b in zip(zg.grad[0].tolist(), MI_GRAD_Z)))
        name = str(dtype).replace("torch.", "")
        # The spec's gradients are finite differences printed to 6 decimals: 1e-5 is their own resolution.
        good = err <= tol and gerr <= (2e-5 if dtype == torch.float64 else 1e-3)
        ok = ok and good
        worst[name] = {"max_abs_err_values": err, "max_abs_err_grad": gerr, "ok": good}
    print(json.dumps({"check": "kde_mi vs reference spec sec. 1.3 table", "results": worst, "ok": ok}))
    return 0 if ok else 1


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--time-steps", type=int, default=4)
    p.add_argument("--steps", type=int, default=50, help="timed steps")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first (cuDNN autotuning, allocator, Adam)")
    p.add_argument("--tmi", action="store_true", help="loss CE + 0.05 * KDE-MI(first, last conv spikes)")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--backend", default=None,
                   help="SpikingJelly neuron backend: cupy|torch for SpikingJelly 0.0.0.0.x (default cupy on cuda); "
                        "auto|cuda|triton|torch for SpikingJelly >= 2 (sets SJ_LIF_CUDA_IMPLEMENTATION; default auto). "
                        "CPU runs use torch.")
    p.add_argument("--no-cudnn-benchmark", action="store_true", help="torch.backends.cudnn.benchmark = False")
    p.add_argument("--allow-tf32", action="store_true", help="let cuDNN/cuBLAS use TF32 (default: strict fp32)")
    p.add_argument("--deterministic", action="store_true",
                   help="torch.backends.cudnn.deterministic = True (spikegrad uses deterministic cuDNN algorithms)")
    p.add_argument("--fused-adam", action="store_true", help="torch.optim.Adam(fused=True) instead of the default")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--check-mi", action="store_true", help="check kde_mi against the spec's table and exit")
    p.add_argument("--check-neuron", action="store_true",
                   help="compare one step's loss and gradients with a hand-written spikegrad LIF and exit")
    return p.parse_args(argv)


def sj_setup(args):
    """SpikingJelly version and backend; SJ >= 2 reads its CUDA implementation from the environment at import."""
    version = importlib.metadata.version("spikingjelly")
    legacy = version.startswith("0.")
    if legacy:
        backend = args.backend or ("cupy" if args.device == "cuda" else "torch")
        if backend not in ("cupy", "torch"):
            sys.exit(f"SpikingJelly {version} has the backends cupy and torch, not {backend!r}")
        if args.device == "cpu" and backend != "torch":
            sys.exit("--device cpu needs --backend torch")
    else:
        backend = args.backend or ("auto" if args.device == "cuda" else "torch")
        if backend not in ("auto", "cuda", "triton", "torch"):
            sys.exit(f"SpikingJelly {version} selects auto|cuda|triton|torch, not {backend!r} "
                     "(the cupy backend is SpikingJelly 0.0.0.0.14's)")
        if args.device == "cuda":
            os.environ["SJ_LIF_CUDA_IMPLEMENTATION"] = backend
    return version, legacy, backend


def build_model(args, legacy, backend):
    from torch import nn
    from spikingjelly.activation_based import neuron, surrogate

    sys.path.insert(0, HERE)
    from torch_reference import DATASETS, ConvBNLIF, NeuronSpec, SpikingNet

    class SJLIFAdapter(nn.Module):
        """torch_reference's LIF slot, (T, B, ...) -> spikes (T, B, ...), filled by SpikingJelly's LIFNode."""

        def __init__(self):
            super().__init__()
            kw = dict(tau=2.0, decay_input=False, v_threshold=1.0, v_reset=0.0, detach_reset=False,
                      surrogate_function=surrogate.ATan(alpha=2.0), step_mode="m")
            if legacy:
                kw["backend"] = backend
            self.node = neuron.LIFNode(**kw)
            self.keep = False
            self.spikes = None

        def forward(self, x):
            s = self.node(x)
            self.spikes = s if self.keep else None
            return s

    info = DATASETS["cifar10"]
    net = SpikingNet("vggsnn", info.channels, info.size, info.classes, args.time_steps, info.mean, info.std,
                     NeuronSpec())
    lifs = []
    for layer in net.features:
        if isinstance(layer, ConvBNLIF):
            layer.lif = SJLIFAdapter()
            lifs.append(layer.lif)
    if args.tmi:
        lifs[0].keep = lifs[-1].keep = True  # X = first conv spiking layer, Z = last (spec sec. 1.1)
    return net.to(args.device), lifs


def check_neuron(args, sj_version, legacy, backend) -> int:
    """One forward + backward of the SpikingJelly model and of a copy whose LIFs are written out by hand as
    spikegrad's (h = 0.5*v + x, spike iff h > 1, v = (1 - s)*h, ATan alpha 2 surrogate), same weights and batch:
    shows that the SpikingJelly neuron (and its cupy/CUDA kernels on a GPU) computes spikegrad's LIF."""
    import copy

    import torch
    from torch import nn

    class AtanSpike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, u):
            ctx.save_for_backward(u)
            return (u > 0).to(u.dtype)

        @staticmethod
        def backward(ctx, grad):
            (u,) = ctx.saved_tensors
            return grad * 1.0 / (1.0 + (math.pi / 2 * 2.0 * u) ** 2)  # (alpha/2) / (1 + (pi/2 alpha u)^2), alpha 2

    class HandLIF(nn.Module):
        def __init__(self, keep):
            super().__init__()
            self.keep, self.spikes = keep, None

        def forward(self, x):
            v, out = torch.zeros_like(x[0]), []
            for t in range(x.shape[0]):
                h = 0.5 * v + x[t]
                s = AtanSpike.apply(h - 1.0)
                v = (1.0 - s) * h
                out.append(s)
            s = torch.stack(out)
            self.spikes = s if self.keep else None
            return s

    torch.manual_seed(args.seed)
    args.tmi = True
    net, lifs = build_model(args, legacy, backend)
    ref = copy.deepcopy(net)
    ref_lifs = []
    for layer in ref.features:
        if hasattr(layer, "lif"):
            layer.lif = HandLIF(layer.lif.keep)
            ref_lifs.append(layer.lif)
    images = torch.rand(args.batch, 3, 32, 32, device=args.device)
    labels = torch.randint(0, 10, (args.batch,), device=args.device)

    def loss_of(model, taps):
        logits = model(images)
        ce = nn.functional.cross_entropy(logits.mean(0), labels)
        mi = kde_mi(firing_rate_255(taps[0].spikes), firing_rate_255(taps[-1].spikes))[0]
        (ce + MI_LAMBDA * mi).backward()
        return float(ce.detach()), float(mi.detach()), [t.spikes.detach() for t in (taps[0], taps[-1])]

    ce_a, mi_a, sp_a = loss_of(net, lifs)
    ce_b, mi_b, sp_b = loss_of(ref, ref_lifs)
    grad_diff = max(float((p.grad - q.grad).abs().max()) for p, q in zip(net.parameters(), ref.parameters()))
    grad_max = max(float(q.grad.abs().max()) for q in ref.parameters())
    spikes_differ = sum(int((a != b).sum()) for a, b in zip(sp_a, sp_b))
    # A differing spike (an exact tie h == 1, or cuDNN summing in another order) moves everything after it, so
    # the check asks for equal losses only when every tapped spike is equal.
    ok = spikes_differ > 0 or (abs(ce_a - ce_b) <= 1e-5 * max(1.0, abs(ce_b)) and grad_diff <= 1e-4 * grad_max)
    print(json.dumps({"check": "SpikingJelly LIFNode vs hand-written spikegrad LIF", "spikingjelly": sj_version,
                      "backend": backend, "device": args.device, "batch": args.batch, "ce": [ce_a, ce_b],
                      "mi": [mi_a, mi_b], "max_abs_grad_diff": grad_diff, "max_abs_grad": grad_max,
                      "tapped_spikes_differing": spikes_differ, "ok": ok}))
    return 0 if ok else 1


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.check_mi:
        return check_mi()
    sj_version, legacy, backend = sj_setup(args)
    if args.check_neuron:
        import torch

        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        return check_neuron(args, sj_version, legacy, backend)

    import torch
    import torch.nn.functional as F
    from spikingjelly.activation_based import functional as sjf

    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        sys.exit("no CUDA device (use --device cpu)")
    torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
    torch.backends.cudnn.allow_tf32 = args.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = args.allow_tf32
    torch.backends.cudnn.deterministic = args.deterministic
    torch.manual_seed(args.seed)

    net, lifs = build_model(args, legacy, backend)
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, **({"fused": True} if args.fused_adam else {}))
    images = torch.rand(args.batch, 3, 32, 32, device=args.device)
    labels = torch.randint(0, 10, (args.batch,), device=args.device)

    def step():
        logits = net(images)                                   # (T, B, 10)
        loss = F.cross_entropy(logits.mean(0), labels)
        mi = None
        if args.tmi:
            mi = kde_mi(firing_rate_255(lifs[0].spikes), firing_rate_255(lifs[-1].spikes))[0]
            loss = loss + MI_LAMBDA * mi
            lifs[0].spikes = lifs[-1].spikes = None
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sjf.reset_net(net)
        return loss, mi

    def sync():
        if cuda:
            torch.cuda.synchronize()

    loss = mi = None
    first_loss = None
    for _ in range(args.warmup):
        loss, mi = step()
        if first_loss is None:
            first_loss = loss.item()
    sync()

    state = peak = reserved = None
    if cuda:
        state = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        events = [torch.cuda.Event(enable_timing=True) for _ in range(args.steps + 1)]
    times_ms = []
    wall0 = time.perf_counter()
    if cuda:
        events[0].record()
        for i in range(args.steps):
            loss, mi = step()
            events[i + 1].record()
        sync()
        times_ms = [events[i].elapsed_time(events[i + 1]) for i in range(args.steps)]
    else:
        for _ in range(args.steps):
            t0 = time.perf_counter()
            loss, mi = step()
            times_ms.append(1e3 * (time.perf_counter() - t0))
    wall = time.perf_counter() - wall0
    if cuda:
        peak = torch.cuda.max_memory_allocated()
        reserved = torch.cuda.memory_reserved()
    if first_loss is None:
        first_loss = loss.item()

    mean_ms = sum(times_ms) / len(times_ms)
    mib = 1024.0 * 1024.0
    selected = backend
    if not legacy and cuda:
        try:  # which implementation SJ >= 2 picked (best effort; private API)
            from spikingjelly._ops.lif import _selection
            picked = {v.name for v in _selection._selections.values() if v is not None}
            if picked:
                selected = f"{backend} -> {','.join(sorted(picked))}"
        except Exception:  # noqa: BLE001
            pass
    out = {
        "framework": "pytorch+spikingjelly",
        "model": "vggsnn",
        "loss": "CE+0.05*MI" if args.tmi else "CE",
        "batch": args.batch,
        "time_steps": args.time_steps,
        "device": torch.cuda.get_device_name() if cuda else (platform.processor() or platform.machine()),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "spikingjelly": sj_version,
        "sj_backend": selected,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "tf32": args.allow_tf32,
        "cudnn_deterministic": args.deterministic,
        "adam": "fused" if args.fused_adam else "default (foreach on CUDA)",
        "warmup": args.warmup,
        "steps": args.steps,
        "ms_per_step_mean": mean_ms,
        "ms_per_step_median": statistics.median(times_ms),
        "ms_per_step_min": min(times_ms),
        "img_per_s": args.batch / (mean_ms / 1e3),
        "wall_s": wall,
        "step_peak_MiB": (peak - state) / mib if cuda else None,
        "state_MiB": state / mib if cuda else None,
        "peak_MiB": peak / mib if cuda else None,
        "reserved_MiB": reserved / mib if cuda else None,
        "params": sum(p.numel() for p in net.parameters()),
        "loss_first": first_loss,
        "loss_last": float(loss),
        "mi_last": float(mi) if mi is not None else None,
    }
    if not math.isfinite(out["loss_last"]):
        print(json.dumps(out))
        print("the training loss is not finite", file=sys.stderr)
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
