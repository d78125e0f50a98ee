// IDX files (the MNIST family): a big-endian header `0x00 0x00 <type> <ndim>`, ndim big-endian uint32
// sizes, then the row-major payload. Only type 0x08 (unsigned byte) is used by MNIST and
// Fashion-MNIST, so only it is accepted: images are 0x00000803 (N,H,W), labels 0x00000801 (N).
//
// Files may be gzip-compressed or plain (zlib reads both). The payload must be exactly as long as the
// header says: a truncated or over-long file, a corrupt gzip stream (bad deflate data or CRC) and an
// out-of-range label are errors naming the file and what was expected versus found.
#pragma once
#include <string>

#include "datasets/dataset.h"

namespace spikegrad {

// uint8 (N,1,H,W): the channel dimension is added so every dataset is (N,C,H,W).
Tensor read_idx_images(const std::string& path);
// int32 (N); each label must be in [0, num_classes).
Tensor read_idx_labels(const std::string& path, int64_t num_classes);

// `<dir>/<stem>.gz` when it exists, else `<dir>/<stem>`; throws naming both when neither does.
std::string find_idx_file(const std::string& dir, const std::string& stem);

// The standard file names: {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] in `dir`.
// Fashion-MNIST: 60000/10000 images 28x28, 10 classes, mean 0.2860, std 0.3530.
// MNIST: same layout, mean 0.1307, std 0.3081.
Dataset load_fashion_mnist(const std::string& dir, Split split);
Dataset load_mnist(const std::string& dir, Split split);

}  // namespace spikegrad
