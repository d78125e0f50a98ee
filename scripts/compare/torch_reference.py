#!/usr/bin/env python3
"""An independent PyTorch reference for spikegrad's spiking models.

A developer tool, not part of spikegrad: the engine, its build and its tests never use it. It needs
torch, numpy and safetensors (CPU is enough) and nothing from spikegrad except the files it checks.

What it does (scripts/compare/README.md has the commands and the measured results):
  1. builds, in plain PyTorch, the models of spikegrad's zoo from their description in the project's
     reference spec (§2 neuron, §3 models) and spikegrad's README, with the same parameter and buffer
     names ("features.<i>.conv.weight", "features.<i>.bn.running_mean", "classifier.<j>.weight", ...);
  2. loads a spikegrad checkpoint (safetensors) into it with load_state_dict(strict=True), reading the
     model name, T, neuron and dataset from the checkpoint's "spikegrad" metadata;
  3. runs the first N test examples in eval mode and compares the mean-over-T logits with the file
     written by `spikegrad eval --checkpoint CKPT --save-logits FILE --test-subset N`;
  4. for each example whose logits differ, searches for one or two spikes, each within a few float32
     rounding errors of the threshold, whose inversion reproduces spikegrad's logits;
  5. optionally (--adv) recomputes spikegrad's saved FGSM examples from the PyTorch input gradient
     (BPTT through the LIF with the triangle surrogate), which checks the backward pass as well;
  6. exits with status 1 when a difference is not explained by float32 rounding (see `compare`).

Why near-ties are counted instead of tolerated: a LIF neuron spikes iff h > 1. When an example has a
membrane potential within a few float32 rounding errors of the threshold, two correct implementations
that sum a convolution in different orders may disagree on that spike, and one flipped spike moves the
logits by roughly |w|/T (far above any float32 tolerance). The script measures how large float32
rounding is on each run (by repeating the forward pass in float64) and flags every example that has a
potential that close to the threshold as "fragile". A logit mismatch on a fragile example is reported
as explained; a mismatch on any other example is a real disagreement and fails the run.
"""
from __future__ import annotations

import argparse
import copy
import gzip
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn

# --------------------------------------------------------------------------------------------------
# Datasets: shape, classes and the normalisation constants spikegrad uses (its datasets/*.cpp and the
# usual torchvision values). spikegrad stores them as float32; so does this table, via np.float32.


@dataclass(frozen=True)
class DatasetInfo:
    channels: int
    size: int
    classes: int
    mean: tuple
    std: tuple
    default_dir: str
    fmt: str  # "idx" | "cifar10" | "cifar100"


DATASETS = {
    "fashion-mnist": DatasetInfo(1, 28, 10, (0.2860,), (0.3530,), "/usr/share/datasets/fashion-mnist", "idx"),
    "mnist": DatasetInfo(1, 28, 10, (0.1307,), (0.3081,), "data/mnist", "idx"),
    "cifar10": DatasetInfo(3, 32, 10, (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), "data/cifar-10-batches-bin",
                           "cifar10"),
    "cifar100": DatasetInfo(3, 32, 100, (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761), "data/cifar-100-binary",
                            "cifar100"),
}


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes (gzip or plain) as an array of its declared shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * d:8 + 4 * d], "big") for d in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header promises {dims}, file holds {data.size} bytes of data")
    return data.reshape(dims)


def _idx_path(directory: Path, stem: str) -> Path:
    for candidate in (directory / (stem + ".gz"), directory / stem):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"neither {stem}.gz nor {stem} in {directory}")


def load_test_split(name: str, directory: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first n examples of the test split: uint8 images (n,C,H,W) and int64 labels (n,)."""
    info = DATASETS[name]
    if info.fmt == "idx":
        images = _read_idx(_idx_path(directory, "t10k-images-idx3-ubyte"))[:, None]
        labels = _read_idx(_idx_path(directory, "t10k-labels-idx1-ubyte"))
    else:
        file_name, label_bytes, label_index = ("test_batch.bin", 1, 0) if info.fmt == "cifar10" else ("test.bin", 2, 1)
        raw = np.fromfile(directory / file_name, dtype=np.uint8)
        records = raw.reshape(-1, label_bytes + 3 * 32 * 32)
        images = records[:, label_bytes:].reshape(-1, 3, 32, 32)
        labels = records[:, label_index]
    if n > 0:
        images, labels = images[:n], labels[:n]
    return np.ascontiguousarray(images), labels.astype(np.int64)


def to_unit_float(images_u8: np.ndarray) -> torch.Tensor:
    """uint8 -> float32 pixel/255, correctly rounded (numpy float32 division), as torchvision's ToTensor."""
    table = np.arange(256, dtype=np.float32) / np.float32(255.0)
    return torch.from_numpy(table[images_u8])


# --------------------------------------------------------------------------------------------------
# The neuron of reference §2: h_t = decay·v_{t-1} + I_t, spike iff h_t > threshold, hard reset
# v_t = (1 - s_t)·h_t with the gradient through both factors, triangle surrogate of half-width γ.


class SpikeFunction(torch.autograd.Function):
    """Heaviside forward; backward uses the triangle surrogate σ'(u) = max(0, γ - |u|) / γ²."""

    @staticmethod
    def forward(ctx, u, gamma: float, strict: bool):
        ctx.save_for_backward(u)
        ctx.gamma = gamma
        fired = u > 0 if strict else u >= 0
        return fired.to(u.dtype)

    @staticmethod
    def backward(ctx, grad_spike):
        (u,) = ctx.saved_tensors
        gamma = ctx.gamma
        surrogate = torch.clamp(gamma - u.abs(), min=0.0) / (gamma * gamma)
        return grad_spike * surrogate, None, None


@dataclass
class NeuronSpec:
    decay: float = 0.5       # multiplicative leak (reference §2); IF is decay 1
    threshold: float = 1.0
    strict: bool = True      # spike iff h > threshold (TMI LIF); IF uses h >= threshold
    hard_reset: bool = True  # v = (1 - s)·h; soft: v = h - s·threshold
    detach_reset: bool = False
    gamma: float = 1.0       # triangle surrogate half-width
    surrogate: str = "triangle"


class Tracer:
    """Shared by a network's LIFs. When on: collects per LIF call the pre-spike potentials h as
    (T, B, neurons). `flips` {(call, t): [neuron, ...]} inverts those spikes (single-example batches only),
    which lets the comparison show that a mismatch is one threshold decision taken the other way."""

    def __init__(self):
        self.on = False
        self.potentials: list[torch.Tensor] = []
        self.flips: dict = {}
        self.calls = 0

    def begin(self, on: bool, flips: dict | None = None):
        self.on, self.flips, self.calls, self.potentials = on, flips or {}, 0, []


class LIF(nn.Module):
    """Multi-step neuron over x of shape (T, B, ...); the membrane starts at 0 on every call."""

    def __init__(self, spec: NeuronSpec, tracer: Tracer):
        super().__init__()
        self.spec = spec
        self.tracer = tracer  # plain attribute: no parameters, nothing in the state_dict

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, tracer = self.spec, self.tracer
        call = tracer.calls
        tracer.calls += 1
        v = torch.zeros_like(x[0])
        spikes, potentials = [], []
        for t in range(x.shape[0]):
            h = s.decay * v + x[t]
            spike = SpikeFunction.apply(h - s.threshold, s.gamma, s.strict)
            if (call, t) in tracer.flips:
                flat = spike.detach().clone().view(-1)
                index = torch.tensor(tracer.flips[(call, t)])
                flat[index] = 1.0 - flat[index]
                spike = flat.view_as(spike)
            gate = spike.detach() if s.detach_reset else spike
            v = h * (1.0 - gate) if s.hard_reset else h - gate * s.threshold
            spikes.append(spike)
            potentials.append(h.detach())
        if tracer.on:
            tracer.potentials.append(torch.stack(potentials).flatten(2))
        return torch.stack(spikes)


class ConvBNLIF(nn.Module):
    """reference §3 `Layer`: Conv2d(bias=True) -> BatchNorm2d over the merged T·B batch -> LIF over time."""

    def __init__(self, cin: int, cout: int, stride: int, neuron: NeuronSpec, tracer: Tracer):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1, bias=True)
        self.bn = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)
        self.lif = LIF(neuron, tracer)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        y = self.bn(self.conv(x))               # (T·B, C, H, W), T-major
        y = y.view(steps, -1, *y.shape[1:])      # (T, B, C, H, W)
        return self.lif(y).flatten(0, 1)


# The zoo, written from reference §3 and spikegrad's README. ("conv", out_channels, stride) or ("pool",);
# a pool takes an index in `features` as it would in an nn.Sequential. Classifier: hidden Linear widths
# (the last Linear maps to the classes) and whether a LIF follows each hidden Linear. Linear layers are
# numbered 0, 1, 2 in `classifier` (the LIFs between them hold no tensors and take no index).
def _c(out, stride=1):
    return ("conv", out, stride)


_P = ("pool",)
_VGG11 = [_c(64), _P, _c(128), _c(256), _P, _c(512), _c(512), _c(512), _P, _c(512), _c(512)]
ZOO = {
    "vggsnn": ([_c(64), _c(128, 2), _c(256), _c(256, 2), _c(512), _c(512, 2), _c(512), _c(512, 2)], [], False),
    "vgg11": (_VGG11, [4096, 4096], False),       # TMI's: three Linear layers with nothing between them
    "vgg11_rat": (_VGG11, [4096, 4096], True),    # [RAT]/[FEEL]: a LIF after each hidden Linear
    "alexnet": ([_c(64), _P, _c(192), _P, _c(384), _c(256), _c(256), _P], [1024], True),
    "small_cnn": ([_c(16), _P, _c(32), _P], [], False),
}


class SpikingNet(nn.Module):
    """images (B,C,H,W) in [0,1] -> logits (T,B,K): normalise, repeat T times, features, per-step classifier."""

    def __init__(self, model: str, channels: int, size: int, classes: int, steps: int, mean, std,
                 neuron: NeuronSpec):
        super().__init__()
        if model not in ZOO:
            raise ValueError(f"unknown model {model!r}; known: {', '.join(sorted(ZOO))}")
        stages, hidden, spiking_hidden = ZOO[model]
        self.steps = steps
        self.neuron = neuron
        self.tracer = Tracer()
        # Normalisation as the model's first op, (x - mean)/std, written as x·(1/std) + (-mean/std) with the
        # constants rounded to float32 first: algebraically the same, and it rounds like spikegrad's
        # channel_affine so that the first layer does not start from 1-ulp different inputs.
        mean32 = np.asarray(mean, dtype=np.float32)
        std32 = np.asarray(std, dtype=np.float32)
        self.register_buffer("norm_scale", torch.from_numpy(np.float32(1.0) / std32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("norm_shift", torch.from_numpy(-mean32 / std32).view(1, -1, 1, 1), persistent=False)
        self.norm_mean = [float(m) for m in mean32]  # for the float64 pass: (x - mean) / std exactly
        self.norm_std = [float(s) for s in std32]

        self.features = nn.ModuleList()
        c, s = channels, size
        for stage in stages:
            if stage[0] == "conv":
                self.features.append(ConvBNLIF(c, stage[1], stage[2], neuron, self.tracer))
                c, s = stage[1], (s + 2 - 3) // stage[2] + 1
            else:
                self.features.append(nn.AvgPool2d(2, 2))
                s = (s - 2) // 2 + 1
            if s < 1:
                raise ValueError(f"{model}: a {size}px input shrinks to nothing")
        width = c * s * s
        self.classifier = nn.ModuleList()
        for w in hidden + [classes]:
            self.classifier.append(nn.Linear(width, w))
            width = w
        self.hidden_lifs = [LIF(neuron, self.tracer) for _ in hidden] if spiking_hidden else []

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype == torch.float64:
            mean = images.new_tensor(self.norm_mean).view(1, -1, 1, 1)
            std = images.new_tensor(self.norm_std).view(1, -1, 1, 1)
            return (images - mean) / std
        return images * self.norm_scale + self.norm_shift

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        steps, batch = self.steps, images.shape[0]
        x = self.normalise(images)
        x = x.unsqueeze(0).expand(steps, *x.shape).reshape(steps * batch, *x.shape[1:])  # direct encoding
        for layer in self.features:
            x = layer(x, steps) if isinstance(layer, ConvBNLIF) else layer(x)
        x = x.flatten(1)  # (T·B, C·H·W): the classifier runs on every time step
        for j, fc in enumerate(self.classifier):
            x = fc(x)
            if j < len(self.hidden_lifs):
                x = self.hidden_lifs[j](x.view(steps, batch, -1)).flatten(0, 1)
        return x.view(steps, batch, -1)


# --------------------------------------------------------------------------------------------------
# Checkpoints


@dataclass
class Loaded:
    net: SpikingNet
    config: dict
    dataset: str
    filled_counters: list = field(default_factory=list)


def neuron_from_config(cfg: dict) -> NeuronSpec:
    is_if = cfg.get("neuron", "lif") == "if"
    return NeuronSpec(decay=1.0 if is_if else float(cfg.get("decay", 0.5)), threshold=float(cfg.get("threshold", 1.0)),
                      strict=not is_if, hard_reset=cfg.get("reset", "hard") == "hard",
                      detach_reset=bool(cfg.get("detach_reset", False)), gamma=float(cfg.get("surrogate_alpha", 1.0)),
                      surrogate=cfg.get("surrogate", "triangle"))


def load_checkpoint(path: Path) -> Loaded:
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if "spikegrad" not in metadata:
        raise ValueError(f"{path}: no 'spikegrad' metadata; not a spikegrad checkpoint")
    meta = json.loads(metadata["spikegrad"])
    cfg = meta["config"]
    model_name = meta.get("model", cfg["model"])
    info = DATASETS[cfg["dataset"]]
    net = SpikingNet(model_name, info.channels, info.size, info.classes, int(cfg["time_steps"]), info.mean, info.std,
                     neuron_from_config(cfg))

    state = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    # PyTorch's BatchNorm2d keeps a num_batches_tracked counter that it reads only when momentum=None
    # (cumulative averaging). spikegrad's BN has a fixed momentum of 0.1, keeps no such counter and saves
    # none. It is the one difference we accept, and we accept it explicitly: the counters are filled with
    # 0 (their value cannot affect a momentum-0.1 BN), and any other missing or unexpected name still
    # fails the strict load below.
    counters = [k for k in missing if k.endswith(".bn.num_batches_tracked")]
    for k in counters:
        state[k] = torch.zeros_like(expected[k])
    if unexpected or len(counters) != len(missing):
        raise SystemExit(f"{path}: state names differ from the PyTorch model\n  missing: "
                         f"{[k for k in missing if k not in counters]}\n  unexpected: {unexpected}")
    net.load_state_dict(state, strict=True)  # also checks every shape
    net.eval()
    return Loaded(net, cfg, cfg["dataset"], counters)


def read_logits_file(path: Path) -> tuple[torch.Tensor, torch.Tensor, dict]:
    with safe_open(str(path), framework="pt") as f:
        return f.get_tensor("logits"), f.get_tensor("labels").long(), f.metadata() or {}


# --------------------------------------------------------------------------------------------------
# Running the reference: float32 (the comparison) and float64 (the rounding-noise yardstick).


@dataclass
class Pass:
    logits: torch.Tensor      # (N, K) mean over T, float32 pass
    logits64: torch.Tensor    # (N, K) float64 pass
    margin: torch.Tensor      # (N,) min over all neurons and steps of |h - threshold|, float32 pass
    flipped64: torch.Tensor   # (N,) bool: some spike differs between the float32 and float64 passes
    h_err: torch.Tensor       # (N,) max |h32 - h64| over potentials within 0.5 of the threshold
                              # (meaningful where flipped64 is False)
    rates: list               # per LIF call: firing rate of the float32 pass


def traced_forward(net: SpikingNet, images: torch.Tensor, flips: dict | None = None) -> tuple[torch.Tensor, list]:
    """Mean-over-T logits and the potentials of every LIF call (optionally with some spikes inverted)."""
    net.tracer.begin(True, flips)
    try:
        with torch.no_grad():
            logits = net(images)
        potentials = net.tracer.potentials
    finally:
        net.tracer.begin(False)
    return logits.mean(0), potentials


def explain_by_flips(net: SpikingNet, image: torch.Tensor, target: torch.Tensor, atol: float, delta: float,
                     max_candidates: int = 8):
    """Looks for one near-threshold spike, or one and then a second that is near the threshold once the first is
    inverted (a flip changes the membrane of later steps and the inputs of later layers), whose inversion turns
    our logits into `target` (spikegrad's) to within atol. Returns [(call, t, neuron, |h - threshold|), ...]
    or None."""
    theta = float(np.float32(net.neuron.threshold))

    def near_threshold(flips: dict):
        logits, hs = traced_forward(net, image[None], flips)
        found = []
        for call, h in enumerate(hs):  # h (T, 1, neurons)
            margin = (h[:, 0].double() - theta).abs()
            for t, neuron in torch.nonzero(margin <= delta).tolist():
                if neuron not in flips.get((call, t), []):
                    found.append((float(margin[t, neuron]), call, t, neuron))
        return logits[0], sorted(found)[:max_candidates]

    def matches(logits):
        return float((logits.double() - target.double()).abs().max()) <= atol

    _, first = near_threshold({})
    for m1, c1, t1, k1 in first:
        flips = {(c1, t1): [k1]}
        logits, second = near_threshold(flips)
        if matches(logits):
            return [(c1, t1, k1, m1)]
        for m2, c2, t2, k2 in second:
            both = {key: list(v) for key, v in flips.items()}
            both.setdefault((c2, t2), []).append(k2)
            logits2, _ = traced_forward(net, image[None], both)
            if matches(logits2[0]):
                return [(c1, t1, k1, m1), (c2, t2, k2, m2)]
    return None


def run_reference(net: SpikingNet, images: torch.Tensor, batch: int) -> Pass:
    net64 = copy.deepcopy(net).double()
    # The threshold as the float32 the spike test uses (h - threshold is computed in float32).
    theta, strict = float(np.float32(net.neuron.threshold)), net.neuron.strict
    outs = {k: [] for k in ("logits", "logits64", "margin", "flipped64", "h_err")}
    spike_counts, neuron_counts = None, None
    for start in range(0, images.shape[0], batch):
        x = images[start:start + batch]
        logits, hs = traced_forward(net, x)
        logits64, hs64 = traced_forward(net64, x.double())
        n = x.shape[0]
        margin = torch.full((n,), float("inf"), dtype=torch.float64)
        flipped = torch.zeros(n, dtype=torch.bool)
        err = torch.zeros(n, dtype=torch.float64)
        if spike_counts is None:
            spike_counts, neuron_counts = [0.0] * len(hs), [0] * len(hs)
        for call, (h, h64) in enumerate(zip(hs, hs64)):  # each (T, B, neurons)
            h = h.double()
            margin = torch.minimum(margin, (h - theta).abs().amin(dim=(0, 2)))
            s32 = h > theta if strict else h >= theta
            s64 = h64 > theta if strict else h64 >= theta
            spike_counts[call] += float(s32.sum())
            neuron_counts[call] += s32.numel()
            flipped |= (s32 != s64).any(dim=2).any(dim=0)
            # Rounding error where it matters: on potentials within 0.5 of the threshold.
            near = (h - theta).abs() < 0.5
            err = torch.maximum(err, torch.where(near, (h - h64).abs(), 0.0).amax(dim=(0, 2)))
        for k, v in (("logits", logits), ("logits64", logits64), ("margin", margin), ("flipped64", flipped),
                     ("h_err", err)):
            outs[k].append(v)
    rates = [c / max(1, n) for c, n in zip(spike_counts or [], neuron_counts or [])]
    return Pass(**{k: torch.cat(v) for k, v in outs.items()}, rates=rates)


# --------------------------------------------------------------------------------------------------
# The comparison


def top2_gap(logits: torch.Tensor) -> torch.Tensor:
    top = logits.double().topk(2, dim=1).values
    return top[:, 0] - top[:, 1]


def rounding_scale(ref: Pass) -> float:
    """The largest |h32 - h64| near the threshold on examples whose float32 and float64 spikes agree."""
    clean = ~ref.flipped64
    return float(ref.h_err[clean].max()) if bool(clean.any()) else float("nan")


def compare(net: SpikingNet, images: torch.Tensor, ref: Pass, theirs: torch.Tensor, labels: torch.Tensor,
            atol: float, tie_factor: float, max_mismatch_frac: float, require_reproduced: bool = False) -> bool:
    """Prints the comparison; False when a difference is not explained by float32 rounding.

    Per example: diff = max_k |logit_spikegrad - logit_reference|. With identical spikes the two differ only
    by float32 rounding in the Linear layers (measured below, ~1e-6), so diff > atol (1e-4) means some spike
    differs. That is explained only for a near-tie example: one with a potential within tie_factor x rho of
    the threshold, rho being the largest float32 rounding error of a potential near the threshold that this
    run measured (float32 vs float64 PyTorch). tie_factor 4 leaves room for spikegrad's own float32 error
    (same order as PyTorch's) plus a margin. A changed prediction is explained by such an example, or by
    a top-2 logit gap <= 2·atol. For the examples beyond tolerance the script also searches for one or two
    near-threshold spikes whose inversion reproduces spikegrad's logits (a pass condition only with
    require_reproduced: a rare mismatch may need more than two inversions).
    """
    theta = float(np.float32(net.neuron.threshold))
    n = labels.shape[0]
    clean = ~ref.flipped64
    rho_h = rounding_scale(ref)
    rho_logit = float((ref.logits.double() - ref.logits64)[clean].abs().amax()) if bool(clean.any()) else float("nan")
    delta = tie_factor * rho_h
    fragile = ref.margin <= delta
    ulp = float(np.spacing(np.float32(theta)))  # "ulp": float32 spacing just above the threshold (2^-23 for 1.0)

    diff = (theirs.double() - ref.logits.double()).abs().amax(dim=1)
    mismatch = diff > atol
    pred_ref, pred_theirs = ref.logits.argmax(1), theirs.argmax(1)
    disagree = pred_ref != pred_theirs
    near_tie = top2_gap(ref.logits) <= 2 * atol
    unexplained_mismatch = mismatch & ~fragile
    unexplained_disagree = disagree & ~(fragile & mismatch) & ~near_tie

    def pct(mask):
        return f"{int(mask.sum())} ({100.0 * float(mask.double().mean()):.2f}%)"

    acc_ref = 100.0 * float((pred_ref == labels).double().mean())
    acc_theirs = 100.0 * float((pred_theirs == labels).double().mean())
    matched = diff[~mismatch]
    print(f"examples compared:                          {n}")
    print(f"accuracy: spikegrad {acc_theirs:.2f}%, PyTorch reference {acc_ref:.2f}%")
    print(f"argmax agreement:                           {n - int(disagree.sum())}/{n} "
          f"({100.0 * (1 - float(disagree.double().mean())):.2f}%)")
    print(f"max |logit diff|, all examples:             {float(diff.max()):.3e}")
    print(f"max |logit diff|, examples within tolerance: {float(matched.max()) if matched.numel() else 0.0:.3e}"
          f" (tolerance {atol:.1e}); median {float(diff.median()):.3e}")
    print(f"examples beyond tolerance (a spike differs): {pct(mismatch)}")
    print("float32 rounding measured on this run (PyTorch float32 vs float64, examples with identical spikes):")
    print(f"  potentials within 0.5 of the threshold: max |h32 - h64| = {rho_h:.3e} ({rho_h / ulp:.1f} ulp of the "
          f"threshold); logits: max |diff| = {rho_logit:.3e}")
    print(f"  examples whose float32 and float64 PyTorch spikes differ: {pct(ref.flipped64)}")
    print(f"near-tie examples (some |h - threshold| <= {tie_factor:g} x {rho_h:.2e} = {delta:.2e}): {pct(fragile)}")
    print(f"examples by their smallest |h - threshold| in ulp (= {ulp:.3e}, the float32 spacing above the "
          "threshold): count, beyond tolerance")
    margin_ulp = ref.margin / ulp
    lower = 0.0
    for upper in (1, 2, 4, 16, 64, 256, float("inf")):
        band = (margin_ulp > lower) & (margin_ulp <= upper) if lower > 0 else margin_ulp <= upper
        print(f"  {'(' if lower > 0 else '['}{lower:g}, {upper:g}]: {int(band.sum())}, {int((band & mismatch).sum())}")
        lower = upper
    exact = ref.margin == 0
    print(f"examples with a potential exactly at the threshold (where '>' and '>=' differ): {int(exact.sum())}, "
          f"beyond tolerance {int((exact & mismatch).sum())}")
    print(f"beyond tolerance: near-tie (explained) {int((mismatch & fragile).sum())}, "
          f"NOT near-tie (unexplained) {int(unexplained_mismatch.sum())}")
    print(f"prediction disagreements: {int(disagree.sum())}; explained by a near-tie spike "
          f"{int((disagree & fragile & mismatch).sum())}, by a logit near-tie {int((disagree & near_tie).sum())}; "
          f"unexplained {int(unexplained_disagree.sum())}")
    ok_flips = True
    if bool(mismatch.any()):
        idx = torch.nonzero(mismatch).flatten()[:50].tolist()
        print("examples beyond tolerance (index: |logit diff|; smallest |h - threshold|; float32 and float64 PyTorch "
              "spikes differ; spikes whose inversion reproduces spikegrad's logits to the tolerance):")
        reproduced = 0
        for i in idx:
            found = explain_by_flips(net, images[i], theirs[i], atol, max(delta, 4 * ulp))
            reproduced += found is not None
            how = "none found (1 or 2 near-threshold spikes tried)" if found is None else "; ".join(
                f"LIF call {c} step {t} neuron {k} (|h - threshold| = {m / ulp:.1f} ulp)" for c, t, k, m in found)
            # (the second spike of a pair is measured after the first one is inverted)
            print(f"  {i}: {float(diff[i]):.3e}; {float(ref.margin[i]):.3e} ({float(margin_ulp[i]):.1f} ulp); "
                  f"{bool(ref.flipped64[i])}; {how}")
        print(f"reproduced by inverting near-threshold spikes: {reproduced} of the {len(idx)} listed")
        if require_reproduced and reproduced < len(idx):
            print(f"FAIL: {len(idx) - reproduced} mismatches not reproduced by inverting near-threshold spikes")
            ok_flips = False
    if rho_logit > atol / 4:
        print(f"WARNING: float32 rounding of the logits ({rho_logit:.2e}) is not small against the tolerance {atol:.1e}")

    ok = ok_flips
    if bool(unexplained_mismatch.any()):
        print(f"FAIL: {int(unexplained_mismatch.sum())} examples differ beyond the tolerance without a near-tie spike")
        ok = False
    if bool(unexplained_disagree.any()):
        print(f"FAIL: {int(unexplained_disagree.sum())} prediction disagreements without a near-tie")
        ok = False
    if float(mismatch.double().mean()) > max_mismatch_frac:
        print(f"FAIL: {pct(mismatch)} examples mismatch, more than the allowed {100 * max_mismatch_frac:.1f}%")
        ok = False
    return ok


def check_fgsm(net: SpikingNet, adv_path: Path, images: torch.Tensor, labels: torch.Tensor, margin: torch.Tensor,
               delta: float) -> bool:
    """Recomputes spikegrad's saved FGSM inputs x' = clamp01(x + eps·sign(d CE(mean_t logits) / dx))."""
    with safe_open(str(adv_path), framework="pt") as f:
        meta = f.metadata() or {}
        # Tensors are named "<attack>/eps=<eps>" (transfer ones "transfer/..."), described in the metadata.
        fgsm = [k for k in f.keys() if not k.startswith("transfer/") and meta.get(k, "").startswith("fgsm")]
        if not fgsm:
            print(f"{adv_path}: no FGSM entry (metadata {meta})")
            return False
        key = fgsm[0]
        adv = f.get_tensor(key)
        adv_labels = f.get_tensor("labels").long()
    settings = meta[key]
    m = re.search(r"eps (\d+(?:\.\d+)?)(?:/(\d+(?:\.\d+)?))?", settings)
    if "grad bptt" not in settings or not m:
        print(f"{adv_path}: {key} is '{settings}'; only BPTT FGSM can be recomputed")
        return False
    eps = float(m.group(1)) / (float(m.group(2)) if m.group(2) else 1.0)
    n = adv.shape[0]
    if n > images.shape[0]:
        print(f"FAIL: {adv_path} holds {n} examples; run with --test-subset {n} or more")
        return False
    if net.neuron.surrogate != "triangle":
        print(f"{adv_path}: the checkpoint's surrogate is {net.neuron.surrogate}; this reference implements the "
              "triangle only, so the FGSM check is skipped")
        return True
    if not torch.equal(adv_labels, labels[:n]):
        print("FAIL: the adversarial file's labels are not the first test labels")
        return False
    x = images[:n].clone().requires_grad_(True)
    loss = F.cross_entropy(net(x).mean(0), labels[:n])
    (grad,) = torch.autograd.grad(loss, x)
    # Same float32 ops as spikegrad's attack: eps rounded to float32, times sign, plus x, clamp.
    ours = torch.clamp(x.detach() + torch.sign(grad) * torch.tensor(eps, dtype=torch.float32), 0.0, 1.0)
    same = ours == adv
    per_example = (~same).flatten(1).sum(1)
    fragile = margin[:n] <= delta
    bad = (per_example > 0) & ~fragile
    print(f"FGSM ({settings}) on {n} examples: {float(same.double().mean()) * 100:.4f}% of pixels identical; "
          f"{int((per_example == 0).sum())}/{n} examples identical")
    print(f"  examples with differing pixels: {int((per_example > 0).sum())}, of which near-tie {int(((per_example > 0) & fragile).sum())}")
    if bool(bad.any()):
        # A pixel whose gradient is tiny can change sign on rounding alone: show how small those were, and
        # fail when one was larger than 1e-3 of its example's largest |gradient| (far above float32 noise).
        g = grad.detach().abs().flatten(1)
        rel = (g / g.amax(1, keepdim=True).clamp_min(1e-30)).view_as(grad)
        worst = float(rel[~same & bad.view(-1, 1, 1, 1).expand_as(same)].max())
        print(f"  non-near-tie examples with differing pixels: {int(bad.sum())}; largest |grad| of such a pixel, "
              f"relative to its example's max |grad|: {worst:.2e}")
        if worst > 1e-3:
            print("FAIL: FGSM pixels differ where the PyTorch gradient is not negligible")
            return False
    return True


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, type=Path, help="a spikegrad best/last.safetensors")
    p.add_argument("--logits", type=Path, help="file from `spikegrad eval --save-logits FILE --test-subset N`")
    p.add_argument("--test-subset", type=int, default=2000, help="first N test examples (must match the eval run)")
    p.add_argument("--data-dir", type=Path, help="dataset folder (default: spikegrad's default for the dataset)")
    p.add_argument("--batch", type=int, default=0, help="examples per forward (0: pick by model size)")
    p.add_argument("--atol", type=float, default=1e-4,
                   help="max |logit difference| of an example with identical spikes (float32; default 1e-4)")
    p.add_argument("--tie-factor", type=float, default=4.0,
                   help="an example is near-tie when some |h - threshold| <= this x the measured float32 rounding")
    p.add_argument("--max-mismatch-frac", type=float, default=0.05,
                   help="fail when more than this share of examples mismatches, explained or not")
    p.add_argument("--require-reproduced", action="store_true",
                   help="also fail when a mismatch is not reproduced by inverting 1-2 near-threshold spikes")
    p.add_argument("--adv", type=Path, help="file from `spikegrad attack --save-adv FILE`: recompute its FGSM inputs")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    loaded = load_checkpoint(args.checkpoint)
    net, cfg = loaded.net, loaded.config
    spec = net.neuron
    theta = spec.threshold
    print(f"checkpoint {args.checkpoint}: model {cfg['model']}, dataset {cfg['dataset']}, T = {cfg['time_steps']}, "
          f"neuron {cfg.get('neuron', 'lif')} (decay {spec.decay}, threshold {theta}, "
          f"{'h > threshold' if spec.strict else 'h >= threshold'}, {'hard' if spec.hard_reset else 'soft'} reset)")
    print(f"load_state_dict(strict=True): {len(net.state_dict()) - len(loaded.filled_counters)} tensors loaded; "
          f"{len(loaded.filled_counters)} BatchNorm num_batches_tracked counters filled with 0 "
          f"(spikegrad saves none; unused with momentum 0.1)")
    info = DATASETS[loaded.dataset]
    directory = args.data_dir or Path(info.default_dir)
    images_u8, labels_np = load_test_split(loaded.dataset, directory, args.test_subset)
    images, labels = to_unit_float(images_u8), torch.from_numpy(labels_np)
    batch = args.batch or (250 if cfg["model"] == "small_cnn" else 32)  # the traced potentials need memory

    theirs = None
    if args.logits:  # read first: a wrong file should fail before the long reference pass
        theirs, their_labels, meta = read_logits_file(args.logits)
        if theirs.shape != (labels.shape[0], info.classes):
            print(f"FAIL: {args.logits} holds logits {tuple(theirs.shape)}, expected ({labels.shape[0]}, "
                  f"{info.classes}); same --test-subset?")
            return 1
        if not torch.equal(their_labels, labels):
            print("FAIL: the logits file's labels differ from the test split read here (order or subset)")
            return 1
        if meta.get("checkpoint") and Path(meta["checkpoint"]).resolve() != args.checkpoint.resolve():
            print(f"note: the logits file was written from {meta['checkpoint']}")

    ref = run_reference(net, images, batch)
    names = [f"features.{i}" for i, layer in enumerate(net.features) if isinstance(layer, ConvBNLIF)]
    names += [f"after classifier.{j}" for j in range(len(net.hidden_lifs))]
    print("reference firing rates (eval mode): " + ", ".join(f"{n} {r:.4f}" for n, r in zip(names, ref.rates)))
    if ref.rates and min(ref.rates) == 0.0:
        print("note: some layer never fires on these examples; the comparison cannot see past a silent layer")
    ok = True
    if theirs is not None:
        ok = compare(net, images, ref, theirs, labels, args.atol, args.tie_factor, args.max_mismatch_frac,
                     args.require_reproduced)
    else:
        acc = 100.0 * float((ref.logits.argmax(1) == labels).double().mean())
        print(f"reference accuracy on {labels.shape[0]} examples: {acc:.2f}% (no --logits file to compare)")
    if args.adv:
        ok = check_fgsm(net, args.adv, images, labels, ref.margin, args.tie_factor * rounding_scale(ref)) and ok
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
