#!/usr/bin/env python3
"""Writes a small CIFAR-10-format dataset (3x32x32, binary records) made from Fashion-MNIST.

A developer helper for scripts/compare/torch_reference.py: spikegrad's 32 px models (vggsnn, vgg11,
vgg11_rat, alexnet) need 3-channel 32x32 data, and a machine without CIFAR can still train them for a few
steps and compare them with the PyTorch reference. It is NOT CIFAR and its accuracies mean nothing.

Each image is a Fashion-MNIST image padded by 2 pixels to 32x32 and given three different channels
(the image, its vertical flip, and its inverse), so the three input channels carry different signals.
Labels are the Fashion-MNIST labels. Output: DIR/data_batch_{1..5}.bin and DIR/test_batch.bin, each
record = 1 label byte + 3072 pixel bytes (channel-planar, row-major), as the CIFAR-10 binary release.
"""
import argparse
import gzip
from pathlib import Path

import numpy as np


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * d:8 + 4 * d], "big") for d in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def cifar_like(images: np.ndarray) -> np.ndarray:
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2)))
    return np.stack([padded, padded[:, ::-1, :], 255 - padded], axis=1)  # (N, 3, 32, 32)


def write_records(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    records = np.concatenate([labels.astype(np.uint8)[:, None], images.reshape(len(images), -1)], axis=1)
    path.write_bytes(np.ascontiguousarray(records).tobytes())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out_dir", type=Path)
    p.add_argument("--source", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    p.add_argument("--train-per-file", type=int, default=100, help="records in each of the 5 training files")
    p.add_argument("--test", type=int, default=500, help="records in test_batch.bin")
    args = p.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    train_x = read_idx(args.source / "train-images-idx3-ubyte.gz")
    train_y = read_idx(args.source / "train-labels-idx1-ubyte.gz")
    test_x = read_idx(args.source / "t10k-images-idx3-ubyte.gz")
    test_y = read_idx(args.source / "t10k-labels-idx1-ubyte.gz")
    k = args.train_per_file
    for i in range(5):
        part = slice(i * k, (i + 1) * k)
        write_records(args.out_dir / f"data_batch_{i + 1}.bin", cifar_like(train_x[part]), train_y[part])
    write_records(args.out_dir / "test_batch.bin", cifar_like(test_x[:args.test]), test_y[:args.test])
    print(f"wrote {5 * k} training and {args.test} test records to {args.out_dir}")


if __name__ == "__main__":
    main()
