#!/usr/bin/env python3
"""Cross-check spikegrad's safetensors I/O against the Python `safetensors` package.

A developer tool, never run by the build or the tests. Needs `pip install safetensors numpy`.

  check_safetensors.py read FILE    FILE was written by spikegrad; print every entry and check that it
                                    holds exactly the reference tensors and metadata of
                                    tests/test_safetensors.cpp.
  check_safetensors.py write FILE   write the reference tensors with the Python package, for the C++
                                    loader to check.

Both directions, from the repository root with a built test binary:

  SPIKEGRAD_KEEP_SAFETENSORS=/tmp/cpp.safetensors \\
      build/tests/spikegrad_tests --gtest_filter=SafetensorsTest.RoundTripsAllDtypesAndMetadata
  scripts/dev/check_safetensors.py read /tmp/cpp.safetensors
  scripts/dev/check_safetensors.py write /tmp/py.safetensors
  SPIKEGRAD_READ_SAFETENSORS=/tmp/py.safetensors \\
      build/tests/spikegrad_tests --gtest_filter=SafetensorsTest.ReadsExternalReferenceFile

Exit status 0 when everything matches, 1 otherwise.
"""
import json
import struct
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

# Must match reference_tensors() and kReferenceMetadata in tests/test_safetensors.cpp.
REFERENCE = {
    "f32": np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 1.5], dtype=np.float32).reshape(2, 3),
    "f64": np.arange(4, dtype=np.float64) / 3.0,
    "i32": np.array([-7, 0, 2147483647], dtype=np.int32).reshape(3, 1),
    "i64": np.array([-(1 << 40), (1 << 40) + 1], dtype=np.int64),
    "u8": np.array([0, 1, 127, 128, 255], dtype=np.uint8),
    "scalar": np.array(3.25, dtype=np.float32),
    "empty": np.zeros((0, 4), dtype=np.float32),
}
METADATA = {"format": "spikegrad-test", "note": "caf\u00e9 \u2713"}


def check_layout(path):
    """What the Python package does not check on read but spikegrad promises on write."""
    problems = []
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = f.read(n)
    if (8 + n) % 8:
        problems.append(f"data starts at byte {8 + n}, not 8-byte aligned")
    if header.rstrip(b" ") != header.rstrip():
        problems.append("header padding is not spaces")
    entries = {k: v for k, v in json.loads(header).items() if k != "__metadata__"}
    cursor = 0
    for name, e in sorted(entries.items(), key=lambda kv: tuple(kv[1]["data_offsets"])):
        begin, end = e["data_offsets"]
        if begin != cursor:
            problems.append(f"{name}: starts at {begin}, expected {cursor}")
        cursor = end
    return problems


def read(path):
    problems = check_layout(path)
    with safe_open(path, framework="numpy") as f:
        metadata = f.metadata() or {}
        names = list(f.keys())
        print(f"{path}: {len(names)} tensors, metadata {metadata}")
        for name in names:
            t = f.get_tensor(name)
            print(f"  {name:8s} {str(t.dtype):8s} {t.shape}  {t.ravel()[:6].tolist()}")
            ref = REFERENCE.get(name)
            if ref is None:
                problems.append(f"{name}: unexpected tensor")
            elif t.dtype != ref.dtype or t.shape != ref.shape or t.tobytes() != ref.tobytes():
                problems.append(f"{name}: expected {ref.dtype} {ref.shape} {ref.ravel().tolist()}")
    for name in sorted(set(REFERENCE) - set(names)):
        problems.append(f"{name}: missing")
    if metadata != METADATA:
        problems.append(f"metadata: expected {METADATA}, got {metadata}")
    return problems


def main(argv):
    if len(argv) != 3 or argv[1] not in ("read", "write"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, path = argv[1], argv[2]
    if mode == "write":
        save_file(REFERENCE, path, metadata=METADATA)
        print(f"wrote {path} with safetensors (Python): {sorted(REFERENCE)}")
        return 0
    problems = read(path)
    for p in problems:
        print("MISMATCH " + p)
    print("OK: matches the reference tensors" if not problems else f"FAILED: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
