#include "engine/tensor.h"

#include <atomic>
#include <cstring>
#include <ostream>

#include "engine/cuda_context.h"

namespace spikegrad {

uint64_t next_tensor_id() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

Storage::Storage(size_t bytes, Device dev) : block(allocator(dev).allocate(bytes)), device(dev) {}
Storage::~Storage() { allocator(device).release(block); }

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  Tensor t;
  t.impl_ = std::make_shared<TensorImpl>();
  t.impl_->shape = shape;
  t.impl_->dtype = dtype;
  t.impl_->device = device;
  t.impl_->storage = std::make_shared<Storage>(size_t(shape_numel(shape)) * dtype_size(dtype), device);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_zero();
  return t;
}

namespace {
template <class T>
void fill_host(void* p, int64_t n, double v) {
  T* d = static_cast<T*>(p);
  for (int64_t i = 0; i < n; ++i) d[i] = static_cast<T>(v);
}
void fill_host_any(void* p, DType dt, int64_t n, double v) {
  switch (dt) {
    case DType::F32: fill_host<float>(p, n, v); break;
    case DType::F64: fill_host<double>(p, n, v); break;
    case DType::I32: fill_host<int32_t>(p, n, v); break;
    case DType::I64: fill_host<int64_t>(p, n, v); break;
    case DType::U8: fill_host<uint8_t>(p, n, v); break;
  }
}
template <class T>
double read_host(const void* p) { return double(*static_cast<const T*>(p)); }
}  // namespace

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  // Filled on the host then copied: full() is for constants and tests, not hot paths.
  Tensor host = empty(shape, dtype, Device::CPU);
  fill_host_any(host.raw_data(), dtype, host.numel(), value);
  return host.to(device);
}

Tensor Tensor::scalar(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape, Device device) {
  SG_CHECK(int64_t(values.size()) == shape_numel(shape),
           "from_vector: " << values.size() << " values do not fill shape " << shape_str(shape));
  Tensor host = empty(shape, dtype_of<T>::value, Device::CPU);
  if (!values.empty()) std::memcpy(host.raw_data(), values.data(), values.size() * sizeof(T));
  return host.to(device);
}
template Tensor Tensor::from_vector<float>(const std::vector<float>&, const Shape&, Device);
template Tensor Tensor::from_vector<double>(const std::vector<double>&, const Shape&, Device);
template Tensor Tensor::from_vector<int32_t>(const std::vector<int32_t>&, const Shape&, Device);
template Tensor Tensor::from_vector<int64_t>(const std::vector<int64_t>&, const Shape&, Device);
template Tensor Tensor::from_vector<uint8_t>(const std::vector<uint8_t>&, const Shape&, Device);

const Shape& Tensor::shape() const {
  SG_CHECK(defined(), "shape: tensor is undefined");
  return impl_->shape;
}
int64_t Tensor::size(int dim) const {
  const int n = ndim();
  const int d = dim < 0 ? dim + n : dim;
  SG_CHECK(d >= 0 && d < n, "size: dim " << dim << " out of range for shape " << shape_str(shape()));
  return impl_->shape[size_t(d)];
}
int64_t Tensor::numel() const { return shape_numel(shape()); }
DType Tensor::dtype() const {
  SG_CHECK(defined(), "dtype: tensor is undefined");
  return impl_->dtype;
}
Device Tensor::device() const {
  SG_CHECK(defined(), "device: tensor is undefined");
  return impl_->device;
}
void* Tensor::raw_data() const {
  SG_CHECK(defined(), "raw_data: tensor is undefined");
  return static_cast<char*>(impl_->storage->block.ptr) + impl_->offset_bytes;
}

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  Tensor out = empty(shape(), dtype(), device);
  copy_bytes(out.raw_data(), device, raw_data(), this->device(), nbytes());
  return out;
}

Tensor Tensor::to(DType dt) const {
  if (dt == dtype()) return *this;
  SG_CHECK(device() == Device::CPU, "to(" << dtype_name(dt) << "): dtype conversion runs on the cpu; move the tensor first");
  Tensor out = empty(shape(), dt, Device::CPU);
  const int64_t n = numel();
  const size_t in_size = dtype_size(dtype());
  for (int64_t i = 0; i < n; ++i) {
    const void* p = static_cast<const char*>(raw_data()) + size_t(i) * in_size;
    double v = 0;
    switch (dtype()) {
      case DType::F32: v = read_host<float>(p); break;
      case DType::F64: v = read_host<double>(p); break;
      case DType::I32: v = read_host<int32_t>(p); break;
      case DType::I64: v = read_host<int64_t>(p); break;
      case DType::U8: v = read_host<uint8_t>(p); break;
    }
    fill_host_any(static_cast<char*>(out.raw_data()) + size_t(i) * dtype_size(dt), dt, 1, v);
  }
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  copy_bytes(out.raw_data(), device(), raw_data(), device(), nbytes());
  return out;
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  SG_CHECK(dtype() == dtype_of<T>::value,
           "to_vector<" << dtype_name(dtype_of<T>::value) << ">: tensor holds " << dtype_name(dtype()));
  std::vector<T> out(static_cast<size_t>(numel()));
  copy_bytes(out.data(), Device::CPU, raw_data(), device(), nbytes());
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;

double Tensor::item() const {
  SG_CHECK(numel() == 1, "item: expected a single-element tensor, got shape " << shape_str(shape()));
  alignas(8) unsigned char buf[8];
  copy_bytes(buf, Device::CPU, raw_data(), device(), dtype_size(dtype()));
  switch (dtype()) {
    case DType::F32: return read_host<float>(buf);
    case DType::F64: return read_host<double>(buf);
    case DType::I32: return read_host<int32_t>(buf);
    case DType::I64: return read_host<int64_t>(buf);
    case DType::U8: return read_host<uint8_t>(buf);
  }
  return 0;
}

Tensor Tensor::view(const Shape& new_shape) const {
  Shape s = new_shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      SG_CHECK(infer < 0, "view: at most one -1 allowed, got " << shape_str(new_shape));
      infer = int(i);
    } else {
      SG_CHECK(s[i] >= 0, "view: bad dimension in " << shape_str(new_shape));
      known *= s[i];
    }
  }
  if (infer >= 0) {
    SG_CHECK(known > 0 && numel() % known == 0,
             "view: cannot view " << shape_str(shape()) << " as " << shape_str(new_shape));
    s[size_t(infer)] = numel() / known;
  }
  SG_CHECK(shape_numel(s) == numel(),
           "view: " << shape_str(shape()) << " has " << numel() << " elements, " << shape_str(new_shape) << " needs "
                    << shape_numel(s));
  Tensor out;
  out.impl_ = std::make_shared<TensorImpl>();
  out.impl_->storage = impl_->storage;
  out.impl_->offset_bytes = impl_->offset_bytes;
  out.impl_->shape = s;
  out.impl_->dtype = impl_->dtype;
  out.impl_->device = impl_->device;
  return out;
}

Tensor Tensor::slice0(int64_t begin, int64_t end) const {
  SG_CHECK(ndim() >= 1, "slice0: tensor must have at least one dim");
  SG_CHECK(0 <= begin && begin <= end && end <= size(0),
           "slice0: range [" << begin << "," << end << ") out of bounds for shape " << shape_str(shape()));
  Shape s = shape();
  const int64_t row = size(0) == 0 ? 0 : numel() / size(0);
  s[0] = end - begin;
  Tensor out;
  out.impl_ = std::make_shared<TensorImpl>();
  out.impl_->storage = impl_->storage;
  out.impl_->offset_bytes = impl_->offset_bytes + size_t(begin * row) * dtype_size(dtype());
  out.impl_->shape = s;
  out.impl_->dtype = impl_->dtype;
  out.impl_->device = impl_->device;
  return out;
}

void Tensor::copy_from(const Tensor& src) {
  SG_CHECK(src.shape() == shape() && src.dtype() == dtype(),
           "copy_from: destination " << *this << " and source " << src << " differ in shape or dtype");
  copy_bytes(raw_data(), device(), src.raw_data(), src.device(), nbytes());
}

void Tensor::move_to(Device device) {
  if (device == this->device()) return;
  Tensor moved = to(device);
  impl_->storage = moved.impl_->storage;
  impl_->offset_bytes = moved.impl_->offset_bytes;
  impl_->device = device;
  if (impl_->grad.defined()) impl_->grad = impl_->grad.to(device);
}

void Tensor::fill_zero() { zero_bytes(raw_data(), device(), nbytes()); }

bool Tensor::requires_grad() const { return defined() && impl_->requires_grad; }
Tensor& Tensor::set_requires_grad(bool on) {
  SG_CHECK(defined(), "set_requires_grad: tensor is undefined");
  SG_CHECK(!on || dtype() == DType::F32 || dtype() == DType::F64,
           "set_requires_grad: only floating tensors take gradients, got " << dtype_name(dtype()));
  impl_->requires_grad = on;
  return *this;
}
const Tensor& Tensor::grad() const {
  SG_CHECK(defined(), "grad: tensor is undefined");
  return impl_->grad;
}
void Tensor::set_grad(const Tensor& g) {
  SG_CHECK(defined(), "set_grad: tensor is undefined");
  SG_CHECK(!g.defined() || (g.shape() == shape() && g.dtype() == dtype() && g.device() == device()),
           "set_grad: gradient " << g << " does not match tensor " << *this);
  impl_->grad = g;
}
void Tensor::zero_grad() {
  if (defined()) impl_->grad = Tensor();
}

std::vector<Tensor> to_cpu(const std::vector<Tensor>& tensors) {
  std::vector<Tensor> out(tensors);
  std::vector<size_t> offset(tensors.size());
  size_t total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!tensors[i].defined() || !tensors[i].is_cuda()) continue;
    offset[i] = total;
    total += (tensors[i].nbytes() + 7) / 8 * 8;  // each tensor's bytes 8-aligned in the buffer
  }
  if (total == 0) return out;
  Tensor gathered = Tensor::empty({int64_t(total)}, DType::U8, Device::CUDA);
  auto* at = static_cast<unsigned char*>(gathered.raw_data());
  for (size_t i = 0; i < tensors.size(); ++i)
    if (tensors[i].defined() && tensors[i].is_cuda())
      copy_bytes(at + offset[i], Device::CUDA, tensors[i].raw_data(), Device::CUDA, tensors[i].nbytes());
  const Tensor host = gathered.to(Device::CPU);  // the one transfer
  const auto* from = static_cast<const unsigned char*>(host.raw_data());
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!tensors[i].defined() || !tensors[i].is_cuda()) continue;
    out[i] = Tensor::empty(tensors[i].shape(), tensors[i].dtype());
    std::memcpy(out[i].raw_data(), from + offset[i], out[i].nbytes());
  }
  return out;
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  if (!t.defined()) return os << "Tensor(undefined)";
  return os << "Tensor(" << dtype_name(t.dtype()) << ", " << device_name(t.device()) << ", " << shape_str(t.shape()) << ")";
}

}  // namespace spikegrad
