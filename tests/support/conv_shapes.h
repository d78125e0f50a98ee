// Odd convolution shapes shared by the implicit-GEMM tests (CPU emulation and CUDA): every kernel/stride/
// padding the zoo uses plus the edges of the tiling (sizes that are not multiples of a tile, a kernel larger
// than its input, K crossing a 128-column tile, float4-eligible outputs).
#pragma once
#include <vector>

#include "kernels/conv2d.h"

namespace spikegrad::testing {

struct ConvCase {
  const char* name;
  Conv2dShape shape;
};

inline std::vector<ConvCase> odd_conv_cases() {
  return {
      {"3x3_s1_p1", make_conv2d_shape(3, 5, 7, 9, 6, 3, 3, 1, 1)},
      {"3x3_s2_p1", make_conv2d_shape(3, 5, 7, 9, 6, 3, 3, 2, 1)},
      {"1x1_s1_p0", make_conv2d_shape(3, 5, 7, 9, 6, 1, 1, 1, 0)},
      {"1x1_s2_p0", make_conv2d_shape(3, 5, 7, 9, 6, 1, 1, 2, 0)},
      {"5x5_s1_p2", make_conv2d_shape(3, 5, 7, 9, 6, 5, 5, 1, 2)},
      {"3x3_on_2x2_p1", make_conv2d_shape(3, 5, 2, 2, 6, 3, 3, 1, 1)},
      {"3x2_s2_p0_rect", make_conv2d_shape(2, 3, 6, 5, 7, 3, 2, 2, 0)},
      {"4x4_pq_mult4", make_conv2d_shape(2, 4, 4, 4, 70, 3, 3, 1, 1)},  // float4 epilogues, K > 64
      {"wide_K_130", make_conv2d_shape(1, 2, 5, 5, 130, 3, 3, 1, 1)},   // crosses a 128-column tile
  };
}

}  // namespace spikegrad::testing
