#include "kernels/channel_affine.h"

namespace spikegrad {

template <class T>
void channel_affine_forward_cpu(const T* x, const T* scale, const T* shift, T* y, int64_t n, int64_t c, int64_t s) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < c; ++k)
      for (int64_t j = 0; j < s; ++j) {
        const int64_t idx = (i * c + k) * s + j;
        y[idx] = channel_affine_value(x[idx], scale[k], shift[k]);
      }
}

template <class T> void channel_affine_backward_cpu(const T* gy, const T* scale, T* gx, int64_t n, int64_t c, int64_t s) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < c; ++k)
      for (int64_t j = 0; j < s; ++j) {
        const int64_t idx = (i * c + k) * s + j;
        gx[idx] += gy[idx] * scale[k];
      }
}

template void channel_affine_forward_cpu<float>(const float*, const float*, const float*, float*, int64_t, int64_t, int64_t);
template void channel_affine_forward_cpu<double>(const double*, const double*, const double*, double*, int64_t, int64_t,
                                                 int64_t);
template void channel_affine_backward_cpu<float>(const float*, const float*, float*, int64_t, int64_t, int64_t);
template void channel_affine_backward_cpu<double>(const double*, const double*, double*, int64_t, int64_t, int64_t);

}  // namespace spikegrad
