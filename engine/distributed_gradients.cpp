#include "engine/distributed_gradients.h"

#include <cstring>

#include "engine/check.h"

namespace spikegrad::dist {

GradientAverager::GradientAverager(const Communicator& comm, const NamedTensors& params, int64_t bucket_bytes)
    : comm_(comm), params_(params), final_(params.size(), false) {
  SG_CHECK(bucket_bytes > 0, "distributed: the gradient bucket size must be > 0 bytes, got " << bucket_bytes);
  const int64_t bucket_numel = std::max<int64_t>(1, bucket_bytes / int64_t(sizeof(float)));
  for (size_t i = params_.size(); i-- > 0;) {
    const Tensor& p = params_[i].tensor;
    SG_CHECK(p.defined() && p.dtype() == DType::F32,
             "distributed: parameter '" << params_[i].name << "' must be a defined float32 tensor to be averaged");
    if (buckets_.empty() || (buckets_.back().numel > 0 && buckets_.back().numel + p.numel() > bucket_numel))
      buckets_.emplace_back();
    buckets_.back().params.push_back(i);
    buckets_.back().numel += p.numel();
    bucket_of_[p.impl()->id] = buckets_.size() - 1;
  }
  const Device device = params_.empty() ? Device::CPU : params_.front().tensor.device();
  for (const NamedTensor& p : params_)
    SG_CHECK(p.tensor.device() == device, "distributed: parameter '" << p.name << "' is on " << device_name(p.tensor.device())
                                                                   << ", the first on " << device_name(device)
                                                                   << ": data-parallel parameters share one device");
  if (device == Device::CUDA && comm_.distributed()) {
    std::vector<int64_t> sizes;
    for (const Bucket& b : buckets_) sizes.push_back(b.numel);
    nccl_ = std::make_unique<NcclAverager>(comm_, sizes);
  }
}

std::vector<std::string> GradientAverager::bucket_names(int64_t b) const {
  std::vector<std::string> names;
  for (size_t i : buckets_.at(size_t(b)).params) names.push_back(params_[i].name);
  return names;
}

void GradientAverager::gradient_final(const Tensor& leaf) {
  if (!comm_.distributed()) return;
  const auto it = bucket_of_.find(leaf.impl()->id);
  if (it == bucket_of_.end()) return;  // the input of an attack, or another non-parameter leaf
  Bucket& bucket = buckets_[it->second];
  for (size_t i : bucket.params)
    if (params_[i].tensor.impl()->id == leaf.impl()->id && !final_[i]) {
      final_[i] = true;
      ++bucket.ready;
    }
  start_ready_buckets(/*force=*/false);
  // Drive the sums in flight while backward goes on (see the header: no progress thread).
  for (size_t b = 0; b < next_to_start_; ++b) comm_.test(buckets_[b].pending);
}

void GradientAverager::start_ready_buckets(bool force) {
  while (next_to_start_ < buckets_.size()) {
    Bucket& bucket = buckets_[next_to_start_];
    if (!force && bucket.ready < int64_t(bucket.params.size())) return;
    start(next_to_start_);
    ++next_to_start_;
  }
}

std::vector<DeviceSlice> GradientAverager::device_slices(const Bucket& bucket) const {
  std::vector<DeviceSlice> slices;
  for (size_t i : bucket.params) {
    const Tensor& grad = params_[i].tensor.grad();
    slices.push_back({grad.defined() ? grad.data<float>() : nullptr, params_[i].tensor.numel()});
  }
  return slices;
}

void GradientAverager::start(size_t b) {
  Bucket& bucket = buckets_[b];
  bucket.started = true;
  if (nccl_) {
    nccl_->start(b, device_slices(bucket));
    return;
  }
  bucket.values.assign(size_t(bucket.numel), 0.0f);
  int64_t offset = 0;
  for (size_t i : bucket.params) {
    const Tensor& grad = params_[i].tensor.grad();
    if (grad.defined())
      std::memcpy(bucket.values.data() + offset, grad.data<float>(), size_t(grad.numel()) * sizeof(float));
    offset += params_[i].tensor.numel();
  }
  bucket.pending = comm_.start_sum(bucket.values.data(), bucket.numel,
                                   "the gradient sum of bucket " + std::to_string(b) + " of " +
                                       std::to_string(buckets_.size()));
}

void GradientAverager::finish() {
  if (!comm_.distributed()) return;
  start_ready_buckets(/*force=*/true);
  if (nccl_) {
    std::vector<std::vector<DeviceSlice>> slices;
    for (const Bucket& bucket : buckets_) slices.push_back(device_slices(bucket));
    nccl_->finish(slices);
    reset_step();
    return;
  }
  const float inverse_size = 1.0f / float(comm_.size());
  for (Bucket& bucket : buckets_) {
    comm_.wait(bucket.pending);
    int64_t offset = 0;
    for (size_t i : bucket.params) {
      Tensor& p = params_[i].tensor;
      const int64_t n = p.numel();
      float* values = bucket.values.data() + offset;
      for (int64_t k = 0; k < n; ++k) values[k] *= inverse_size;
      Tensor grad = p.grad();
      if (grad.defined()) std::memcpy(grad.data<float>(), values, size_t(n) * sizeof(float));
      offset += n;
    }
  }
  reset_step();
}

void GradientAverager::reset_step() {
  for (Bucket& bucket : buckets_) {
    bucket.ready = 0;
    bucket.started = false;
  }
  final_.assign(final_.size(), false);
  next_to_start_ = 0;
}

}  // namespace spikegrad::dist
