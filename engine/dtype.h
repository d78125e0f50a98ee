// Element types and devices. float32 is the training type; float64 exists on the CPU so that
// finite-difference gradient checks run through the same ops in double; integers carry labels
// (int32/int64) and compact spikes or bytes (uint8).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace spikegrad {

enum class Device : uint8_t { CPU, CUDA };
enum class DType : uint8_t { F32, F64, I32, I64, U8 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);    // "float32", ...
const char* device_name(Device d);  // "cpu" | "cuda"

using Shape = std::vector<int64_t>;
int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);  // "(2,3,4)"

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::F32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::F64; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::I32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::I64; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::U8; };

}  // namespace spikegrad
