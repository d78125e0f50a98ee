#!/usr/bin/env python3
"""Loads a spikegrad Spiking-/SEW-ResNet checkpoint into SpikingJelly's own module and compares the logits.

A developer tool, not part of spikegrad: the engine, its build and its tests never use it. It needs torch,
numpy, safetensors and spikingjelly (the `activation_based` API; checked with spikingjelly 2.0.0, torch 2.15).

What it shows (issue 13 item 2; scripts/compare/README.md has the commands and the measured results):
  1. spikegrad's sew_resnet18/34/50 and spiking_resnet18/34/50 use SpikingJelly's parameter names, so
     `spikingjelly.activation_based.model.sew_resnet.sew_resnet18(...)` (or spiking_resnet.*) built with the
     checkpoint's neuron, connect function and class count loads the checkpoint with load_state_dict(strict=True).
     The only names filled in are BatchNorm's num_batches_tracked counters (spikegrad keeps none; unused at
     momentum 0.1), exactly as torch_reference.py does;
  2. SpikingJelly's module, in multi-step mode and eval mode, fed the images as spikegrad feeds them (direct:
     (x - mean)/std repeated over T; phase: the bit-planes of the 8-bit pixel, no normalisation), gives the
     same mean-over-T logits as `spikegrad eval --save-logits`, up to float32 rounding and near-threshold
     spikes. The comparison, the float64 rerun that measures rounding and the near-tie analysis are
     torch_reference.py's own (imported, not copied): a forward hook on every SpikingJelly neuron records its
     pre-spike potentials and re-simulates it bit for bit (the run fails if the re-simulation and SpikingJelly's
     spikes ever differ, so the recorded potentials are SpikingJelly's);
  3. optionally (--adv), the backward pass: spikegrad's saved FGSM inputs (`spikegrad attack --attacks fgsm
     --save-adv FILE`) are recomputed from SpikingJelly's input gradient (BPTT through its ATan/Sigmoid
     surrogate), in the pixel domain (direct encoding) or the spike domain (phase encoding,
     --attack-domain spikes).

What SpikingJelly's modules cannot express is refused with a message: datasets without 3 channels (its conv1
takes RGB), neurons other than IF and LIF, LIF with a decay other than 0.5 (SpikingJelly charges
h = v - v/tau + x, which rounds like spikegrad's decay·v + x only for tau = 2), neuron options, Poisson
encoding, and sew_resnet50 with --sew-connect iand (SpikingJelly's Bottleneck computes sew_function(out,
identity) = branch·(1 − shortcut) while its BasicBlock, and spikegrad for every depth, compute
shortcut·(1 − branch)). One substitution: SEW's --stem-pool avg has no SpikingJelly switch, so `net.maxpool`
is replaced by layer.AvgPool2d(3, 2, 1) (count_include_pad=True, as spikegrad); it holds no tensors.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch_reference as tr  # noqa: E402  (the test split, the float64 rerun, the comparison)

from spikingjelly.activation_based import base, functional, layer, neuron, surrogate  # noqa: E402
from spikingjelly.activation_based.model import sew_resnet, spiking_resnet  # noqa: E402

MODELS = {f"{family}_resnet{depth}": (family, depth) for family in ("sew", "spiking") for depth in (18, 34, 50)}


class Refused(Exception):
    """A checkpoint whose model SpikingJelly's modules cannot express."""


# --------------------------------------------------------------------------------------------------
# The checkpoint's config -> SpikingJelly's constructor arguments


def neuron_settings(cfg: dict) -> tuple[type, dict, tr.NeuronSpec]:
    """SpikingJelly's neuron class and kwargs for the run config, and the spec the probes re-simulate."""
    kind = cfg.get("neuron", "lif")
    if cfg.get("neuron_opt"):
        raise Refused(f"--neuron-opt {cfg['neuron_opt']}: SpikingJelly's IF/LIF take no such options")
    threshold = float(cfg.get("threshold", 1.0))
    hard = cfg.get("reset", "hard") == "hard"
    alpha = float(cfg.get("surrogate_alpha", 1.0))
    kwargs = dict(v_threshold=threshold, v_reset=0.0 if hard else None, detach_reset=bool(cfg.get("detach_reset")))
    name = cfg.get("surrogate", "triangle")
    if name == "atan":
        kwargs["surrogate_function"] = surrogate.ATan(alpha=alpha)
    elif name == "sigmoid":
        kwargs["surrogate_function"] = surrogate.Sigmoid(alpha=alpha)
    # triangle / rectangle: SpikingJelly has no surrogate of that exact shape. The forward pass does not depend
    # on it (spikes are a Heaviside step), so the logit check runs; --adv refuses (check_fgsm).
    if kind == "if":
        cls, decay = neuron.IFNode, 1.0
    elif kind == "lif":
        decay = float(cfg.get("decay", 0.5))
        if decay != 0.5:
            raise Refused(f"--neuron lif --decay {decay}: SpikingJelly's LIFNode charges h = v - v/tau + x, which "
                          "rounds like decay·v + x only for decay 0.5 (tau 2); other decays would differ by rounding")
        cls = neuron.LIFNode
        kwargs.update(tau=2.0, decay_input=False)
    else:
        raise Refused(f"--neuron {kind}: only if and lif map onto SpikingJelly's IFNode / LIFNode here")
    # spikegrad's LIF fires at h > threshold, SpikingJelly's at h >= threshold: they differ only on a potential
    # exactly at the threshold, which compare() counts ("examples with a potential exactly at the threshold").
    spec = tr.NeuronSpec(decay=decay, threshold=threshold, strict=False, hard_reset=hard,
                         detach_reset=kwargs["detach_reset"], gamma=alpha, surrogate=name)
    return cls, kwargs, spec


def build_sj_model(cfg: dict, model_cfg: dict) -> tuple[nn.Module, list[str], tr.NeuronSpec]:
    """SpikingJelly's module for the checkpoint, in multi-step mode, and the substitutions made."""
    name = cfg["model"]
    if name not in MODELS:
        raise Refused(f"model {name}: SpikingJelly's sew_resnet / spiking_resnet cover {', '.join(MODELS)}")
    family, depth = MODELS[name]
    if int(model_cfg.get("in_channels", 0)) != 3:
        raise Refused(f"dataset {cfg['dataset']} has {model_cfg.get('in_channels')} channel(s); SpikingJelly's "
                      "ResNets hard-code a 3-channel conv1 (use cifar10, cifar100 or a CIFAR-format set)")
    cls, kwargs, spec = neuron_settings(cfg)
    connect = cfg.get("sew_connect", "add")
    pool = cfg.get("stem_pool", "max")
    if family == "sew" and depth == 50 and connect == "iand":
        raise Refused("sew_resnet50 --sew-connect iand: SpikingJelly's Bottleneck computes branch·(1 − shortcut), its "
                      "BasicBlock and spikegrad shortcut·(1 − branch); the architectures do not coincide")
    ctor = getattr(sew_resnet if family == "sew" else spiking_resnet, name)
    extra = {"cnf": connect.upper()} if family == "sew" else {}
    net = ctor(spiking_neuron=cls, num_classes=int(model_cfg["num_classes"]), **extra, **kwargs)
    notes = []
    if pool == "avg":
        net.maxpool = layer.AvgPool2d(kernel_size=3, stride=2, padding=1)  # count_include_pad=True, as spikegrad
        notes.append("net.maxpool replaced by layer.AvgPool2d(3, 2, 1) (--stem-pool avg has no SpikingJelly switch)")
    functional.set_step_mode(net, "m")
    return net, notes, spec


# --------------------------------------------------------------------------------------------------
# Probes: the potentials torch_reference's comparison needs, read from SpikingJelly's own neurons


class NeuronProbe:
    """Forward hook on one SpikingJelly neuron. While the tracer is on it re-simulates the neuron from its input
    (same float ops: h = v + x, or v - v/2 + x; spike iff h >= threshold; hard or soft reset), checks that the
    spikes equal SpikingJelly's, records the potentials h (T, B, neurons), and applies the tracer's flips (then
    the re-simulated, flipped spikes replace the output, the reset following the flipped spike)."""

    def __init__(self, name: str, tracer: tr.Tracer, spec: tr.NeuronSpec):
        self.name, self.tracer, self.spec = name, tracer, spec

    def __call__(self, module, inputs, output):
        tracer, s = self.tracer, self.spec
        if not tracer.on:
            return None
        call = tracer.calls
        tracer.calls += 1
        if call >= len(tracer.names):
            tracer.names.append(self.name)
        x = inputs[0].detach()
        v = torch.zeros_like(x[0])
        theta = torch.tensor(s.threshold, dtype=x.dtype)
        spikes, potentials, flipped = [], [], False
        for t in range(x.shape[0]):
            h = (v + x[t]) if s.decay == 1.0 else (v - v / 2.0 + x[t])
            spike = (h >= theta).to(x.dtype)
            if (call, t) in tracer.flips:
                flat = spike.clone().view(-1)
                index = torch.tensor(tracer.flips[(call, t)])
                flat[index] = 1.0 - flat[index]
                spike, flipped = flat.view_as(spike), True
            v = h * (1.0 - spike) if s.hard_reset else h - spike * theta
            spikes.append(spike)
            potentials.append(h)
        ours = torch.stack(spikes)
        if not flipped and not torch.equal(ours, output.detach()):
            raise RuntimeError(f"{self.name}: re-simulated spikes differ from SpikingJelly's "
                               f"({int((ours != output.detach()).sum())} of {ours.numel()}); the probe is wrong")
        tracer.potentials.append(torch.stack(potentials).flatten(2))
        return ours if flipped else None


class SJNet(nn.Module):
    """images (B,C,H,W) in [0,1] -> logits (T,B,K) through SpikingJelly's module; the interface of
    torch_reference.SpikingNet that run_reference / compare / explain_by_flips use (tracer, neuron, dtype)."""

    def __init__(self, sj: nn.Module, steps: int, encoding: str, mean, std, spec: tr.NeuronSpec):
        super().__init__()
        self.sj, self.steps, self.encoding, self.neuron = sj, steps, encoding, spec
        self.tracer = tr.Tracer()
        self.tracer.names = []  # neuron module names in call order (filled by the probes)
        # The normalisation rounded as spikegrad's channel_affine (torch_reference.SpikingNet's comment).
        mean32, std32 = np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32)
        scale = torch.from_numpy(np.float32(1.0) / std32).view(1, -1, 1, 1)
        self.register_buffer("norm_scale", scale, persistent=False)
        self.register_buffer("norm_shift", torch.from_numpy(-mean32 / std32).view(1, -1, 1, 1), persistent=False)
        self.norm_mean, self.norm_std = [float(m) for m in mean32], [float(s) for s in std32]
        for name, m in sj.named_modules():
            if isinstance(m, base.MemoryModule) and hasattr(m, "v_threshold"):
                m.register_forward_hook(NeuronProbe(name, self.tracer, spec))

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(T,B,C,H,W) input of the first conv, as spikegrad's encoder makes it."""
        if self.encoding == "phase":  # kernels/encoding.h: u = clamp(floor(x·255 + 0.5)), bit 7 − t mod 8
            u = torch.clamp(torch.floor(images.float() * np.float32(255.0) + 0.5), 0, 255).to(torch.int32)
            bits = [((u >> (7 - t % 8)) & 1).to(images.dtype) for t in range(self.steps)]
            return torch.stack(bits)
        if images.dtype == torch.float64:
            mean = images.new_tensor(self.norm_mean).view(1, -1, 1, 1)
            std = images.new_tensor(self.norm_std).view(1, -1, 1, 1)
            x = (images - mean) / std
        else:
            x = images * self.norm_scale + self.norm_shift
        return x.unsqueeze(0).expand(self.steps, *x.shape)

    def forward_encoded(self, x_seq: torch.Tensor) -> torch.Tensor:
        functional.reset_net(self.sj)  # membranes start at 0 on every call, as spikegrad's
        return self.sj(x_seq)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_encoded(self.encode(images))


def load_into_sj(path: Path) -> tuple[SJNet, dict, dict, list[str], list[str]]:
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys() if not k.startswith("optimizer.")}
    if "spikegrad" not in metadata:
        raise SystemExit(f"{path}: no 'spikegrad' metadata; not a spikegrad checkpoint")
    meta = json.loads(metadata["spikegrad"])
    cfg, model_cfg = meta["config"], meta["model_config"]
    encoding = cfg.get("encoding", "direct")
    if encoding not in ("direct", "phase"):
        raise Refused(f"--encoding {encoding}: this check re-creates direct and phase inputs only")
    sj, notes, spec = build_sj_model(cfg, model_cfg)
    expected = sj.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    counters = [k for k in missing if k.endswith("num_batches_tracked")]  # see torch_reference.load_checkpoint
    for k in counters:
        tensors[k] = torch.zeros_like(expected[k])
    if unexpected or len(counters) != len(missing):
        raise SystemExit(f"{path}: state names differ from SpikingJelly's {cfg['model']}\n  missing: "
                         f"{[k for k in missing if k not in counters]}\n  unexpected: {unexpected}")
    sj.load_state_dict(tensors, strict=True)  # also checks every shape
    net = SJNet(sj, int(cfg["time_steps"]), encoding, model_cfg["mean"], model_cfg["std"], spec)
    net.eval()
    return net, cfg, model_cfg, counters, notes


# --------------------------------------------------------------------------------------------------
# The backward check: spikegrad's FGSM inputs from SpikingJelly's input gradient


def check_fgsm(net: SJNet, adv_path: Path, images: torch.Tensor, labels: torch.Tensor, margin: torch.Tensor,
               delta: float) -> bool:
    """x' = clamp01(x + eps·sign(d CE(mean_t logits) / dx)), x the images (pixel domain) or their encoded
    spikes (spike domain, saved (B,T,C,H,W)). Same pass rule as torch_reference.check_fgsm: a differing element
    is explained on a near-tie example or where |grad| <= 1e-3 of the example's largest."""
    if net.neuron.surrogate not in ("atan", "sigmoid"):
        print(f"FAIL: --adv needs the checkpoint's surrogate in SpikingJelly (atan or sigmoid); it is "
              f"{net.neuron.surrogate}")
        return False
    with safe_open(str(adv_path), framework="pt") as f:
        meta = f.metadata() or {}
        # Tensors are named "<attack>/eps=<eps>" (transfer ones "transfer/..."), described in the metadata.
        fgsm = [k for k in f.keys() if not k.startswith("transfer/") and meta.get(k, "").startswith("fgsm")]
        if not fgsm:
            print(f"FAIL: {adv_path}: no FGSM entry (metadata {meta})")
            return False
        adv, adv_labels = f.get_tensor(fgsm[0]), f.get_tensor("labels").long()
    settings = meta[fgsm[0]]
    m = re.search(r"eps (\d+(?:\.\d+)?)(?:/(\d+(?:\.\d+)?))?", settings)
    if "grad bptt" not in settings or not m:
        print(f"FAIL: {adv_path}: {fgsm[0]} is '{settings}'; only BPTT FGSM can be recomputed")
        return False
    eps = float(m.group(1)) / (float(m.group(2)) if m.group(2) else 1.0)
    n = adv.shape[0]
    if n > images.shape[0] or not torch.equal(adv_labels, labels[:n]):
        print(f"FAIL: {adv_path}: its {n} labels are not the first test labels read here (--test-subset >= {n}?)")
        return False
    spike_domain = adv.dim() == 5
    with torch.no_grad():
        clean = net.encode(images[:n]).transpose(0, 1).contiguous() if spike_domain else images[:n]
    if adv.shape != clean.shape:
        print(f"FAIL: {adv_path} holds {tuple(adv.shape)}, expected {tuple(clean.shape)}")
        return False
    x = clean.clone().requires_grad_(True)
    logits = net.forward_encoded(x.transpose(0, 1)) if spike_domain else net(x)
    (grad,) = torch.autograd.grad(F.cross_entropy(logits.mean(0), labels[:n]), x)
    ours = torch.clamp(x.detach() + torch.sign(grad) * torch.tensor(eps, dtype=torch.float32), 0.0, 1.0)
    same = ours == adv
    per_example = (~same).flatten(1).sum(1)
    fragile = margin[:n] <= delta
    bad = (per_example > 0) & ~fragile
    print(f"FGSM ({settings}; {'spike' if spike_domain else 'pixel'} domain) on {n} examples: "
          f"{float(same.double().mean()) * 100:.4f}% of elements identical; {int((per_example == 0).sum())}/{n} "
          f"examples identical; differing examples {int((per_example > 0).sum())}, of which near-tie "
          f"{int(((per_example > 0) & fragile).sum())}")
    if bool(bad.any()):
        g = grad.detach().abs().flatten(1)
        rel = (g / g.amax(1, keepdim=True).clamp_min(1e-30)).view_as(grad)
        mask = ~same & bad.view(-1, *([1] * (same.dim() - 1))).expand_as(same)
        worst = float(rel[mask].max())
        print(f"  non-near-tie examples with differing elements: {int(bad.sum())}; largest |grad| of such an element "
              f"relative to its example's max |grad|: {worst:.2e}")
        if worst > 1e-3:
            print("FAIL: FGSM elements differ where SpikingJelly's gradient is not negligible")
            return False
    return True


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, type=Path, help="a spikegrad sew_resnet*/spiking_resnet* checkpoint")
    p.add_argument("--logits", type=Path, help="file from `spikegrad eval --save-logits FILE --test-subset N`")
    p.add_argument("--test-subset", type=int, default=500, help="first N test examples (must match the eval run)")
    p.add_argument("--data-dir", type=Path, help="dataset folder (default: the checkpoint's data_dir, else "
                   "spikegrad's default for the dataset)")
    p.add_argument("--batch", type=int, default=50, help="examples per forward")
    p.add_argument("--atol", type=float, default=1e-4, help="as torch_reference.py")
    p.add_argument("--tie-factor", type=float, default=4.0, help="as torch_reference.py")
    p.add_argument("--max-mismatch-frac", type=float, default=0.05, help="as torch_reference.py")
    p.add_argument("--adv", type=Path, help="file from `spikegrad attack --attacks fgsm --save-adv FILE`")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    try:
        net, cfg, model_cfg, counters, notes = load_into_sj(args.checkpoint)
    except Refused as e:
        print(f"REFUSED: {args.checkpoint}: {e}")
        return 2
    n_loaded = len(net.sj.state_dict()) - len(counters)
    s = net.neuron
    print(f"checkpoint {args.checkpoint}: {cfg['model']} on {cfg['dataset']}, T = {cfg['time_steps']}, encoding "
          f"{net.encoding}, neuron {cfg.get('neuron')} (threshold {s.threshold}, {'hard' if s.hard_reset else 'soft'} "
          f"reset, detach_reset {s.detach_reset}, surrogate {s.surrogate} {s.gamma:g}), stem pool "
          f"{cfg.get('stem_pool', 'max')}, sew connect {cfg.get('sew_connect', 'add')}")
    print(f"SpikingJelly {type(net.sj).__module__}.{cfg['model']}: load_state_dict(strict=True) loaded {n_loaded} "
          f"tensors; {len(counters)} BatchNorm num_batches_tracked counters filled with 0 (spikegrad saves none)")
    for note in notes:
        print(f"substitution: {note}")
    print("below, 'PyTorch reference' is SpikingJelly's module and 'LIF call' one of its neurons (torch_reference's "
          "comparison)")

    info = tr.DATASETS[cfg["dataset"]]
    directory = args.data_dir or Path(cfg.get("data_dir") or info.default_dir)
    images_u8, labels_np = tr.load_test_split(cfg["dataset"], directory, args.test_subset)
    images, labels = tr.to_unit_float(images_u8), torch.from_numpy(labels_np)

    theirs = None
    if args.logits:
        theirs, their_labels, meta = tr.read_logits_file(args.logits)
        if theirs.shape != (labels.shape[0], int(model_cfg["num_classes"])) or not torch.equal(their_labels, labels):
            print(f"FAIL: {args.logits} holds logits {tuple(theirs.shape)} for other examples than the first "
                  f"{labels.shape[0]} test examples read here; same --test-subset and data?")
            return 1
    ref = tr.run_reference(net, images, args.batch)
    print("SpikingJelly firing rates (eval mode): " +
          ", ".join(f"{n} {r:.4f}" for n, r in zip(net.tracer.names, ref.rates)))
    if ref.rates and min(ref.rates) == 0.0:
        print("note: some neuron layer never fires on these examples; the comparison cannot see past a silent layer")
    ok = True
    if theirs is not None:
        ok = tr.compare(net, images, ref, theirs, labels, args.atol, args.tie_factor, args.max_mismatch_frac)
    else:
        acc = 100.0 * float((ref.logits.argmax(1) == labels).double().mean())
        print(f"SpikingJelly accuracy on {labels.shape[0]} examples: {acc:.2f}% (no --logits file to compare)")
    if args.adv:
        ok = check_fgsm(net, args.adv, images, labels, ref.margin, args.tie_factor * tr.rounding_scale(ref)) and ok
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
