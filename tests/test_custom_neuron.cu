// The CUDA half of the extension proof: one line instantiates the multi-step kernels for a neuron that
// lives in the tests (tests/custom_neuron.h). Compiled only when CUDA is on (tests/CMakeLists.txt).
#include "custom_neuron.h"
#include "kernels/neurons/multistep.cuh"

SG_INSTANTIATE_NEURON_CUDA(spikegrad::testing::AdaptiveLif);
