// Tensor: a shape, an element type, a device and a view into reference-counted contiguous storage.
// Views (reshape, slices along dim 0) share storage; every tensor is contiguous, so kernels take a raw
// pointer and a size. Autograd state lives beside it: requires_grad and the accumulated grad of a leaf.
// The tape (engine/tape.h) identifies tensors by their TensorImpl, never by storage.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/allocator.h"
#include "engine/check.h"
#include "engine/dtype.h"

namespace spikegrad {

struct Storage {
  CachingAllocator::Block block;
  Device device;
  Storage(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

struct TensorImpl;

class Tensor {
 public:
  Tensor() = default;  // undefined tensor; defined() is false

  // Factories. Contents of empty() are unspecified.
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32, Device device = Device::CPU);
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape, Device device = Device::CPU);
  static Tensor scalar(double value, DType dtype = DType::F32, Device device = Device::CPU);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int ndim() const { return int(shape().size()); }
  int64_t size(int dim) const;  // negative dims count from the end
  int64_t numel() const;
  DType dtype() const;
  Device device() const;
  bool is_cuda() const { return device() == Device::CUDA; }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype()); }

  void* raw_data() const;
  template <class T> T* data() const;  // checks that T matches dtype()

  // Copies (new storage). to() returns *this when nothing changes.
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;  // CPU only: numeric conversion
  Tensor clone() const;
  template <class T> std::vector<T> to_vector() const;  // copies to the host; T must match dtype()
  double item() const;                                  // single-element tensor, any dtype, any device

  // Views sharing storage; no autograd record (use ops::reshape for that).
  Tensor view(const Shape& shape) const;       // same numel; one dim may be -1
  Tensor slice0(int64_t begin, int64_t end) const;  // rows [begin, end) of dim 0

  void copy_from(const Tensor& src);  // same shape and dtype; any devices
  // Moves the storage to `device` in place, so every handle to this tensor sees the move (a model's
  // parameters are referenced from its layers and its optimizer). Views made earlier keep the old storage.
  void move_to(Device device);
  void fill_zero();

  // Autograd state.
  bool requires_grad() const;
  Tensor& set_requires_grad(bool on);
  const Tensor& grad() const;  // undefined until a backward pass reached this leaf
  void set_grad(const Tensor& g);
  void zero_grad();            // drops the accumulated gradient (it is re-created on the next backward)

  TensorImpl* impl() const { return impl_.get(); }
  static Tensor from_impl(std::shared_ptr<TensorImpl> impl) {
    Tensor t;
    t.impl_ = std::move(impl);
    return t;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& other) const { return impl_ == other.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

uint64_t next_tensor_id();  // process-wide, never reused: the tape identifies tensors by it

// The tensors on the CPU, with ONE device-to-host transfer for all the CUDA ones: they are gathered into
// one device buffer first (device-to-device copies, which do not wait), so reading a step's results (loss
// parts, predictions) waits for the device once instead of once per tensor. CPU and undefined tensors are
// returned as they are.
std::vector<Tensor> to_cpu(const std::vector<Tensor>& tensors);

struct TensorImpl {
  uint64_t id = next_tensor_id();
  std::shared_ptr<Storage> storage;
  size_t offset_bytes = 0;
  Shape shape;
  DType dtype = DType::F32;
  Device device = Device::CPU;
  bool requires_grad = false;
  Tensor grad;
};

template <class T>
T* Tensor::data() const {
  SG_CHECK(defined(), "data<" << dtype_name(dtype_of<T>::value) << ">: tensor is undefined");
  SG_CHECK(dtype() == dtype_of<T>::value,
           "data<" << dtype_name(dtype_of<T>::value) << ">: tensor holds " << dtype_name(dtype()));
  return static_cast<T*>(raw_data());
}

std::ostream& operator<<(std::ostream& os, const Tensor& t);  // "Tensor(float32, cpu, (2,3))"

}  // namespace spikegrad
