#!/usr/bin/env python3
"""PIL + torchvision on the files bench/bench_input_pipeline.cpp wrote: the per-core baseline of spikegrad's JPEG
input pipeline. A developer tool (torch, torchvision and Pillow are never dependencies of spikegrad); run through
scripts/compare/input_pipeline_side_by_side.sh, or directly:

    python3 scripts/compare/input_pipeline_pil.py <dir> [--ours <dir>/ours.json] [--min-time 2]

<dir> is $SPIKEGRAD_BENCH_JPEG_DIR of the benchmark run (imagenet/train/n00000000/*.JPEG, tiny/train/...).
One thread (torch.set_num_threads(1)), timed in CPU seconds of the process like the benchmark; each image is loaded as torchvision.datasets.ImageFolder loads it
(Image.open + convert("RGB")) and transformed with the torchvision pipelines the benchmarks mirror:
    imagenet_train  RandomResizedCrop(224) + RandomHorizontalFlip + ToTensor
    imagenet_eval   Resize(256) + CenterCrop(224) + ToTensor
    large_train, large_eval   the same two on the 1600x1200 files
    tiny_train      RandomCrop(64, padding=4) + RandomHorizontalFlip + ToTensor
    tiny_eval       ToTensor
With --ours (the benchmark's JSON), prints ours vs PIL images/s and the ratio, per core. If the benchmark dumped its
evaluation outputs (<set>_eval_dct.f32, <set>_eval_full.f32), also prints their mean / max absolute difference from
torchvision's, in 0..255 units, for information (exactness is not a goal: see datasets/image_transforms.h).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from PIL import Image
import torchvision
import torchvision.transforms as T

DUMP_COUNT = 50  # bench_input_pipeline.cpp's kDumpCount
OURS = {  # pipeline -> the benchmarks measuring the same work (DCT-scaled decode, then full decode as PIL does)
    "imagenet_train": ["BM_ImageNetTrain", "BM_ImageNetTrainFullDecode"],
    "imagenet_eval": ["BM_ImageNetEval", "BM_ImageNetEvalFullDecode"],
    "large_train": ["BM_LargeTrain", "BM_LargeTrainFullDecode"],
    "large_eval": ["BM_LargeEval", "BM_LargeEvalFullDecode"],
    "tiny_train": ["BM_TinyImageNetTrain"],
    "tiny_eval": ["BM_TinyImageNetEval"],
}


def jpeg_files(folder):
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith((".jpg", ".jpeg")))
    if not names:
        sys.exit(f"no JPEG files in {folder}: run bench_input_pipeline with SPIKEGRAD_BENCH_JPEG_DIR set first")
    return [os.path.join(folder, n) for n in names]


def load(path):  # torchvision.datasets.folder.pil_loader
    with open(path, "rb") as f:
        return Image.open(f).convert("RGB")


def images_per_second(paths, transform, min_time):
    """Images per second of CPU time of this process (as Google Benchmark's default), i.e. per core whatever else
    runs on the machine; whole passes over the files."""
    for p in paths[:10]:  # warm the page cache and the code paths
        transform(load(p))
    done, start = 0, time.process_time()
    while True:
        for p in paths:
            out = transform(load(p))
            done += 1
        elapsed = time.process_time() - start
        if elapsed >= min_time:
            assert out.dtype == torch.float32
            return done / elapsed


def eval_differences(root, set_name, paths, transform):
    rows = []
    theirs = np.stack([transform(load(p)).numpy() for p in paths[:DUMP_COUNT]])
    for variant in ("dct", "full"):
        path = os.path.join(root, f"{set_name}_eval_{variant}.f32")
        if not os.path.exists(path):
            continue
        ours = np.fromfile(path, dtype=np.float32).reshape(theirs.shape)
        d = np.abs(ours.astype(np.float64) - theirs) * 255
        rows.append((f"{set_name}, {'DCT-scaled' if variant == 'dct' else 'full'} decode", d.mean(), d.max(),
                     (d > 1.5).mean() * 100))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--ours", help="bench_input_pipeline --benchmark_out JSON")
    ap.add_argument("--min-time", type=float, default=2.0, help="seconds per pipeline (default 2)")
    ap.add_argument("--json", help="write the PIL figures here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    big = jpeg_files(os.path.join(args.dir, "imagenet", "train", "n00000000"))
    tiny = jpeg_files(os.path.join(args.dir, "tiny", "train", "n00000000", "images"))
    large = jpeg_files(os.path.join(args.dir, "large", "train", "n00000000"))
    torch.manual_seed(0)
    pipelines = {
        "imagenet_train": (big, T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor()])),
        "imagenet_eval": (big, T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor()])),
        "large_train": (large, T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor()])),
        "large_eval": (large, T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor()])),
        "tiny_train": (tiny, T.Compose([T.RandomCrop(64, padding=4), T.RandomHorizontalFlip(), T.ToTensor()])),
        "tiny_eval": (tiny, T.ToTensor()),
    }
    import PIL
    print(f"PIL {PIL.__version__}, torchvision {torchvision.__version__}, torch {torch.__version__}, 1 thread; "
          f"{len(big)} ImageNet-like files (mean {np.mean([os.path.getsize(p) for p in big]) / 1024:.0f} KiB), "
          f"{len(tiny)} Tiny-ImageNet-like files, {len(large)} files of 1600x1200 "
          f"(mean {np.mean([os.path.getsize(p) for p in large]) / 1024:.0f} KiB)")
    pil = {name: images_per_second(paths, t, args.min_time) for name, (paths, t) in pipelines.items()}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(pil, f, indent=1)

    ours = {}
    if args.ours:
        with open(args.ours) as f:
            for b in json.load(f)["benchmarks"]:
                if "images_per_s" in b:
                    ours[b["name"]] = b["images_per_s"]
    print(f"\n{'pipeline':<16} {'PIL img/s':>10}   spikegrad img/s (ratio to PIL), per core (CPU time)")
    for name, rate in pil.items():
        cells = [f"{bench.removeprefix('BM_')}: {ours[bench]:.0f} ({ours[bench] / rate:.2f}x)"
                 for bench in OURS[name] if bench in ours]
        print(f"{name:<16} {rate:>10.0f}   " + ("; ".join(cells) if cells else "(no benchmark figures given)"))

    rows = eval_differences(args.dir, "imagenet", big, pipelines["imagenet_eval"][1])
    rows += eval_differences(args.dir, "large", large, pipelines["large_eval"][1])
    if rows:
        print(f"\nResize(256)+CenterCrop(224), spikegrad vs torchvision on the first {DUMP_COUNT} files of a set "
              "(0..255 units):")
        for name, mean, worst, share in rows:
            print(f"  {name:<30} mean |diff| {mean:.3f}, max {worst:.1f}, {share:.2f}% of values differ by > 1.5")

if __name__ == "__main__":
    main()
