#!/usr/bin/env python3
"""Writes the seed corpus of the libFuzzer targets into tests/fuzz/corpus/<target>/ (small valid and invalid
inputs; the files are committed, this script documents how they were made and can regenerate them):
    python3 tests/fuzz/tools/make_seeds.py
"""
import gzip
import json
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, mtime=0)


# ---- safetensors: u64 little-endian header length, JSON header, data buffer ----
def safetensors(entries, metadata=None, pad=True):
    header, buf = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(buf), len(buf) + len(raw)]}
        buf += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + buf


f32 = lambda *v: struct.pack("<%df" % len(v), *v)
put("safetensors", "valid_one_f32.safetensors", safetensors([("w", "F32", [2, 3], f32(1, 2, 3, 4, 5, 6))]))
put("safetensors", "valid_all_dtypes_meta.safetensors", safetensors([
    ("a.weight", "F32", [2], f32(0.5, -1)),
    ("b.f64", "F64", [1, 1], struct.pack("<d", 3.25)),
    ("c.i32", "I32", [3], struct.pack("<3i", -1, 0, 7)),
    ("d.i64", "I64", [], struct.pack("<q", 42)),
    ("e.u8", "U8", [2, 2], bytes([0, 1, 254, 255])),
    ("f.empty", "F32", [0, 4], b""),
], metadata={"config": "{\"epochs\": 2}", "format": "pt"}))
put("safetensors", "valid_empty.safetensors", safetensors([]))
put("safetensors", "invalid_overlap.safetensors",
    struct.pack("<Q", 120) + b'{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}'.ljust(120) + b"abc")
put("safetensors", "invalid_huge_length.safetensors", struct.pack("<Q", 1 << 62) + b"{}")
put("safetensors", "invalid_truncated.safetensors", safetensors([("w", "F32", [2, 3], f32(1, 2, 3, 4, 5, 6))])[:-5])
put("safetensors", "invalid_bad_dtype.safetensors", safetensors([("w", "BF16", [1], b"\0\0")]))
put("safetensors", "invalid_nested.safetensors", struct.pack("<Q", 16) + b'{"a":[[[[[[]]]]]]')

# ---- IDX: 0x00 0x00 0x08 ndim, big-endian u32 sizes, u8 payload ----
def idx(dims, payload):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(payload)


images = idx([2, 3, 4], range(24))
labels = idx([5], [0, 1, 9, 3, 4])
put("idx", "valid_images.idx3", images)
put("idx", "valid_images.idx3.gz", gz(images))
put("idx", "valid_labels.idx1", labels)
put("idx", "valid_labels.idx1.gz", gz(labels))
put("idx", "invalid_label_out_of_range.idx1", idx([3], [0, 10, 255]))
put("idx", "invalid_bad_magic.idx3", bytes([0, 0, 9, 3]) + images[4:])
put("idx", "invalid_truncated.idx3", images[:-3])
put("idx", "invalid_trailing.idx1", labels + b"\0")
put("idx", "invalid_zero_dim.idx3", idx([0, 3, 4], []))
put("idx", "invalid_gz_truncated.idx3.gz", gz(images)[:-6])
put("idx", "invalid_huge_dims.idx3.gz", gz(idx([0xFFFFFFFF, 0xFFFF, 0xFFFF], range(8))))

# ---- CIFAR: records of label byte(s) + 3072 pixel bytes ----
pixels = bytes((i * 7) & 0xFF for i in range(3072))
put("cifar", "valid_cifar10_1record.bin", bytes([3]) + pixels)                  # 3073 bytes: CIFAR-10
put("cifar", "valid_cifar100_1record.bin", bytes([5, 42]) + pixels)             # 3074 bytes: CIFAR-100
put("cifar", "invalid_cifar10_label.bin", bytes([200]) + pixels)
put("cifar", "invalid_cifar100_coarse_label.bin", bytes([20, 99]) + pixels)
put("cifar", "invalid_short.bin", pixels[:100])

# ---- TOML config of the CLI ----
put("toml_config", "valid_train.toml", """# a train config
[train]
dataset = "fashion-mnist"
model = "small_cnn"
epochs = 2
mi-lambda = 0.05
lr = 1e-3
batch = 1_024
eps = "4/255"
seed = 7
tf32 = false
""")
put("toml_config", "valid_eval_attack.toml", """[eval]
checkpoint = 'runs/x/best.safetensors'
eps = "4/255"
device = "cpu"   # comment

[attack]
eps = "0,2/255,4/255"
steps = 10
save-adv = "adv\\u00e9.safetensors"
""")
put("toml_config", "invalid_header.toml", "[train\nepochs = 2\n")
put("toml_config", "invalid_unknown_key.toml", "[train]\nepcohs = 2\n")
put("toml_config", "invalid_outside.toml", "epochs = 2\n[train]\n")
put("toml_config", "invalid_duplicate.toml", "[train]\nseed = 1\nseed = 2\n")
put("toml_config", "invalid_section.toml", "[training]\nseed = 1\n")
put("toml_config", "invalid_value.toml", "[train]\nepochs = [1, 2]\nlr = 0x10\nname = \"unterminated\n")
put("toml_config", "invalid_range.toml", "[train]\nepochs = 0\nseed = -1\nsteps = 4294967297\n")

# ---- AEDAT 2.0 (CIFAR10-DVS): '#' header lines (first '#!AER-DAT2.0'), then big-endian (address, timestamp) ----
AEDAT_HEADER = b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n"


def aedat(events, header=AEDAT_HEADER):
    # events: (sensor_x, sensor_y, polarity_bit, timestamp[, extra address bits])
    out = header
    for e in events:
        sx, sy, p, t = e[:4]
        extra = e[4] if len(e) > 4 else 0
        out += struct.pack(">II", extra | (sy << 8) | (sx << 1) | p, t)
    return out


put("aedat", "valid_events.aedat", aedat([(0, 0, 0, 100), (5, 10, 1, 200), (127, 127, 1, 300), (64, 3, 0, 300)]))
put("aedat", "valid_wrap_out_of_order.aedat", aedat([(1, 2, 0, 0xFFFFFFF0), (3, 4, 1, 5), (5, 6, 0, 3), (7, 8, 1, 9)]))
put("aedat", "valid_high_bits.aedat", aedat([(1, 1, 1, 1, 1 << 15), (2, 2, 0, 2, 0x80000000)]))
put("aedat", "valid_header_only.aedat", AEDAT_HEADER)
put("aedat", "valid_lf_only.aedat", aedat([(9, 9, 1, 42)], b"#!AER-DAT2.0\n"))
put("aedat", "invalid_version.aedat", aedat([(1, 2, 0, 5)], b"#!AER-DAT3.1\r\n"))
put("aedat", "invalid_no_magic.aedat", aedat([(1, 2, 0, 5)], b""))
put("aedat", "invalid_truncated_header.aedat", b"#!AER-DAT2.0\r\n# unterminated")
put("aedat", "invalid_odd_bytes.aedat", aedat([(1, 2, 0, 5), (3, 4, 1, 6)])[:-4])

# ---- JPEG (Tiny-ImageNet / ImageNet files): small images written by Pillow, and broken variants ----
def jpeg_seeds():
    try:
        from PIL import Image
    except ImportError:
        print("make_seeds: Pillow missing, jpeg seeds not written")
        return
    import io

    def encode(img, **kw):
        buf = io.BytesIO()
        img.save(buf, "JPEG", **kw)
        return buf.getvalue()

    rgb = Image.new("RGB", (16, 12))
    rgb.putdata([((x * 16) & 255, (y * 20) & 255, ((x + y) * 9) & 255) for y in range(12) for x in range(16)])
    put("jpeg", "valid_rgb444.jpg", encode(rgb, quality=90, subsampling=0))
    put("jpeg", "valid_rgb420_progressive.jpg", encode(rgb, quality=75, subsampling=2, progressive=True))
    put("jpeg", "valid_restart_markers.jpg", encode(rgb.resize((40, 24)), quality=80, restart_marker_blocks=1))
    put("jpeg", "valid_gray.jpg", encode(rgb.convert("L"), quality=90))
    put("jpeg", "valid_cmyk_adobe.jpg", encode(rgb.convert("CMYK"), quality=90))
    good = encode(rgb, quality=90, subsampling=2)
    put("jpeg", "invalid_truncated.jpg", good[: len(good) * 2 // 3])
    put("jpeg", "invalid_cut_before_frame.jpg", good[:40])
    put("jpeg", "invalid_png_named_jpeg.jpg", b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR")
    sof = good.index(b"\xff\xc0")
    put("jpeg", "invalid_huge_frame.jpg", good[:sof + 5] + b"\xff\xff\xff\xff" + good[sof + 9:])


jpeg_seeds()
