// CUDA instantiations of the multi-step template for the built-in neurons, and the RGA backward (which does
// not depend on the neuron). Kernels: kernels/neurons/multistep.cuh.
#include "kernels/neurons/multistep.cuh"

SG_INSTANTIATE_NEURON_CUDA(spikegrad::neurons::Lif);
SG_INSTANTIATE_NEURON_CUDA(spikegrad::neurons::Plif);

namespace spikegrad::neurons {

namespace {
// One thread per neuron: the factor is computed once and applied to the T coalesced steps.
__global__ void rga_backward_kernel(const float* __restrict__ gspikes, const float* __restrict__ x_mean, float tau,
                                    float gamma, float* __restrict__ gx, int64_t steps, int64_t count) {
  SG_GRID_STRIDE(i, count) {
    const float g = rga_factor(x_mean[i], tau, gamma);
    for (int64_t t = 0; t < steps; ++t) gx[t * count + i] += gspikes[t * count + i] * g;
  }
}
}  // namespace

void rga_backward_cuda(const float* gspikes, const float* x_mean, float tau, float gamma, float* gx,
                       int64_t steps, int64_t count) {
  if (steps == 0 || count == 0) return;
  rga_backward_kernel<<<unsigned(multistep_cuda_blocks(count)), kCudaBlock>>>(gspikes, x_mean, tau, gamma, gx,
                                                                             steps, count);
  SG_LAUNCH_CHECK();
}

}  // namespace spikegrad::neurons
