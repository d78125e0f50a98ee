#include "kernels/cuda_utils.cuh"
#include "kernels/range_check.h"

namespace spikegrad {

namespace {
__global__ void range_check_kernel(const float* x, int64_t n, float lo, float hi, DeviceCheck check) {
  SG_GRID_STRIDE(i, n) {
    if (!in_range(x[i], lo, hi)) record_check_failure(check, i, x[i]);
  }
}
}  // namespace

void check_range_cuda(const float* x, int64_t n, float lo, float hi, const DeviceCheck& check) {
  SG_LAUNCH_1D(range_check_kernel, n, x, n, lo, hi, check);
}

}  // namespace spikegrad
