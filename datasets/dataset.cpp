#include "datasets/dataset.h"

#include <algorithm>
#include <cstring>

namespace spikegrad {

Split parse_split(const std::string& name) {
  if (name == "train") return Split::Train;
  if (name == "test") return Split::Test;
  SG_FAIL("dataset split: expected one of train|test, got '" << name << "'");
}

const char* split_name(Split split) { return split == Split::Train ? "train" : "test"; }

SampleLayout Dataset::sample_layout() const {
  if (lazy()) return source->layout();
  SG_CHECK(images.defined() && images.ndim() == 4,
           "dataset '" << name << "': in-memory images must be (N,C,H,W), got "
                       << (images.defined() ? shape_str(images.shape()) : "none"));
  return {0, images.size(1), images.size(2), images.size(3)};
}

namespace {

void check_lazy_samples(const Dataset& d, const std::string& context) {
  SG_CHECK(!d.images.defined(), context << ": a dataset has either in-memory images or a sample source, not both");
  const SampleLayout l = d.source->layout();
  SG_CHECK(l.time_steps >= 0 && l.channels >= 1 && l.channels <= 3 && l.height >= 1 && l.width >= 1,
           context << ": the sample source's layout must have T >= 0, 1..3 channels and non-empty H,W, got (T="
                   << l.time_steps << ", C=" << l.channels << ", H=" << l.height << ", W=" << l.width << ")");
  const int64_t n = d.labels.size(0), available = d.source->size();
  if (!d.source_indices) {
    SG_CHECK(n == available, context << ": " << available << " source samples but " << n << " labels");
    return;
  }
  SG_CHECK(int64_t(d.source_indices->size()) == n,
           context << ": " << d.source_indices->size() << " source indices but " << n << " labels");
  for (int64_t k = 0; k < n; ++k) {
    const int64_t i = (*d.source_indices)[size_t(k)];
    SG_CHECK(i >= 0 && i < available,
             context << ": row " << k << " refers to source sample " << i << ", outside [0, " << available << ")");
  }
}

}  // namespace

void check_dataset(const Dataset& d, const std::string& context) {
  SG_CHECK(d.labels.defined() && (d.images.defined() || d.lazy()),
           context << ": images (or a sample source) and labels must be set");
  SG_CHECK(d.labels.dtype() == DType::I32 && d.labels.ndim() == 1 && d.labels.device() == Device::CPU,
           context << ": labels must be int32 (N) on the cpu, got " << d.labels);
  const int64_t n = d.labels.size(0);
  int64_t c = 0;
  if (d.lazy()) {
    check_lazy_samples(d, context);
    c = d.source->layout().channels;
  } else {
    SG_CHECK(d.images.dtype() == DType::U8 && d.images.ndim() == 4 && d.images.device() == Device::CPU,
             context << ": images must be uint8 (N,C,H,W) on the cpu, got " << d.images);
    c = d.images.size(1);
    SG_CHECK(c >= 1 && c <= 3 && d.images.size(2) >= 1 && d.images.size(3) >= 1,
             context << ": images must have 1..3 channels and non-empty H,W, got " << shape_str(d.images.shape()));
    SG_CHECK(d.images.size(0) == n, context << ": " << d.images.size(0) << " images but " << n << " labels");
  }
  SG_CHECK(d.num_classes >= 1, context << ": num_classes must be >= 1, got " << d.num_classes);
  for (int64_t ch = 0; ch < c; ++ch)
    SG_CHECK(d.std[size_t(ch)] > 0.f,
             context << ": std of channel " << ch << " must be > 0, got " << d.std[size_t(ch)]);
  const int32_t* labels = d.labels.data<int32_t>();
  for (int64_t i = 0; i < n; ++i)
    SG_CHECK(labels[i] >= 0 && labels[i] < d.num_classes,
             context << ": label " << labels[i] << " of sample " << i << " is outside [0, " << d.num_classes << ")");
}

Dataset select_samples(const Dataset& d, const std::vector<int64_t>& indices) {
  const int64_t n = d.size();
  for (const int64_t i : indices)
    SG_CHECK(i >= 0 && i < n, "select_samples: index " << i << " is outside [0, " << n << ") of " << d.name);
  Dataset out;
  out.name = d.name;
  out.labels = Tensor::empty({int64_t(indices.size())}, DType::I32);
  out.num_classes = d.num_classes;
  out.mean = d.mean;
  out.std = d.std;
  const int32_t* src_labels = d.labels.data<int32_t>();
  int32_t* dst_labels = out.labels.data<int32_t>();
  for (size_t k = 0; k < indices.size(); ++k) dst_labels[k] = src_labels[indices[k]];
  if (d.lazy()) {
    auto map = std::make_shared<std::vector<int64_t>>(indices.size());
    for (size_t k = 0; k < indices.size(); ++k) (*map)[k] = d.source_index(indices[k]);
    out.source = d.source;
    out.source_indices = std::move(map);
    return out;
  }
  Shape shape = d.images.shape();
  shape[0] = int64_t(indices.size());
  const size_t sample_bytes = size_t(shape[1] * shape[2] * shape[3]);
  out.images = Tensor::empty(shape, DType::U8);
  const uint8_t* src = d.images.data<uint8_t>();
  uint8_t* dst = out.images.data<uint8_t>();
  for (size_t k = 0; k < indices.size(); ++k)
    std::memcpy(dst + k * sample_bytes, src + size_t(indices[k]) * sample_bytes, sample_bytes);
  return out;
}

uint64_t derive_seed(uint64_t base_seed, uint64_t a, uint64_t b) {
  // splitmix64 finaliser applied in a chain: every input bit affects every output bit, so nearby
  // (seed, epoch) pairs give unrelated keys.
  auto mix = [](uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  uint64_t h = mix(base_seed + 0x9E3779B97F4A7C15ull);
  h = mix(h ^ (a + 0x9E3779B97F4A7C15ull));
  return mix(h ^ (b + 0x632BE59BD9B4E019ull));
}

int64_t uniform_below(Generator& gen, int64_t n) {
  SG_CHECK(n >= 1 && n <= (int64_t(1) << 32), "uniform_below: n must be in [1, 2^32], got " << n);
  return int64_t((uint64_t(gen.next_u32()) * uint64_t(n)) >> 32);
}

std::vector<int64_t> random_permutation(int64_t n, Generator& gen) {
  std::vector<int64_t> order(size_t(std::max<int64_t>(n, 0)));
  for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[size_t(i)], order[size_t(uniform_below(gen, i + 1))]);
  return order;
}

TrainValidationSplit split_train_validation(const Dataset& d, int64_t validation_size, uint64_t seed) {
  const int64_t n = d.size();
  SG_CHECK(validation_size >= 0 && validation_size < n,
           "split_train_validation: validation_size must be in [0, " << n << ") for " << d.name << " with " << n
                                                                     << " samples, got " << validation_size);
  // Tag 'VALI' keeps this stream apart from the loader's shuffle/augmentation streams of the same seed.
  Generator gen(derive_seed(seed, 0x56414C49u, 0));
  std::vector<int64_t> order = random_permutation(n, gen);
  std::vector<int64_t> validation(order.begin(), order.begin() + validation_size);
  std::vector<int64_t> train(order.begin() + validation_size, order.end());
  std::sort(validation.begin(), validation.end());
  std::sort(train.begin(), train.end());
  return {select_samples(d, train), select_samples(d, validation)};
}

}  // namespace spikegrad
