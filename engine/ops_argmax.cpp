// Glue for the row-wise argmax (kernels/argmax.h).
#include "engine/op_util.h"
#include "engine/ops.h"
#include "kernels/argmax.h"

namespace spikegrad::ops {

using detail::on_device;

Tensor argmax(const Tensor& x) {
  detail::check_float(x, "argmax", "x");
  detail::check_ndim(x, 2, "argmax", "x");
  const int64_t n = x.size(0), k = x.size(1);
  SG_CHECK(k >= 1, "argmax: x must have at least one column, got " << shape_str(x.shape()));
  Tensor out = Tensor::empty({n}, DType::I32, x.device());
  on_device(
      x, "argmax", [&] { argmax_rows_cuda(x.data<float>(), out.data<int32_t>(), n, k); },
      [&](auto z) {
        using T = decltype(z);
        argmax_rows_cpu<T>(x.data<T>(), out.data<int32_t>(), n, k);
      });
  return out;
}

}  // namespace spikegrad::ops
