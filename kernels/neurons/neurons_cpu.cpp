// CPU pieces of the neuron family that do not depend on the neuron type (the multi-step template itself is
// header-only: kernels/neurons/multistep.h).
#include "kernels/neurons/multistep.h"

namespace spikegrad::neurons {

template <class T>
void rga_backward_cpu(const T* gspikes, const T* x_mean, T tau, T gamma, T* gx, int64_t steps, int64_t count) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) {
    const T g = rga_factor(x_mean[i], tau, gamma);
    for (int64_t t = 0; t < steps; ++t) gx[t * count + i] += gspikes[t * count + i] * g;
  }
}

template void rga_backward_cpu<float>(const float*, const float*, float, float, float*, int64_t, int64_t);
template void rga_backward_cpu<double>(const double*, const double*, double, double, double*, int64_t, int64_t);

}  // namespace spikegrad::neurons
