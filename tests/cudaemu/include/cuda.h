// cudaemu: stands in for the driver API header; spikegrad only needs the runtime's types from it.
#pragma once
#include <cuda_runtime_api.h>
