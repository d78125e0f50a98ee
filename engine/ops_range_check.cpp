// Glue for the range check (kernels/range_check.h).
#include "engine/op_util.h"
#include "engine/ops.h"
#include "kernels/range_check.h"

namespace spikegrad::ops {

using detail::on_device;

void check_range(const Tensor& x, double lo, double hi, const std::function<std::string(int64_t, double)>& message) {
  detail::check_float(x, "check_range", "x");
  on_device(
      x, "check_range",
      [&] { check_range_cuda(x.data<float>(), x.numel(), float(lo), float(hi), arm_device_check(message)); },
      [&](auto z) {
        using T = decltype(z);
        const T* p = x.data<T>();
        const int64_t i = first_outside_range_cpu<T>(p, x.numel(), T(lo), T(hi));
        SG_CHECK(i < 0, message(i, double(p[i])));
      });
}

}  // namespace spikegrad::ops
