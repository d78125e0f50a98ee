// cudaemu: the CUDA runtime header for .cu files compiled as C++ (host API plus device built-ins).
#pragma once
#include <cuda_runtime_api.h>

#include "cudaemu/device.h"
