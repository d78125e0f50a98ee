// The CUDA context seen from host code that must also build without CUDA: availability, raw memory,
// copies. Every CUDA call runs on the default stream (one stream keeps the caching allocator's reuse
// trivially safe). In a CPU-only build these functions exist and report "no CUDA" instead of failing
// to link, so common code needs no #ifdef.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "engine/dtype.h"

namespace spikegrad {

bool cuda_available();   // built with CUDA and at least one device usable
bool cuda_compiled();    // built with CUDA
// Why cuda_available() is false, e.g. "cudaGetDeviceCount: CUDA driver version is insufficient for CUDA
// runtime version", or that the build has no CUDA; empty when CUDA is available.
std::string cuda_unavailable_reason();
void require_cuda(const char* what);  // throws "<what>: needs CUDA, but <cuda_unavailable_reason()>"

// True when the environment variable `name` is set to anything but "" or "0". The switches read with it:
//   SPIKEGRAD_SYNC_AFTER_LAUNCH=1  every kernel launch check (check_launch) also waits for the kernel, so
//                                  an asynchronous fault (illegal address, device assert) is reported
//                                  with the file:line of the launch that caused it instead of at some
//                                  later call, and a deferred device check (below) fails at the op that
//                                  armed it. Debugging only: it serialises the host with the device.
//   SPIKEGRAD_REQUIRE_CUDA=1       (tests) a CUDA test fails instead of skipping when CUDA is unusable.
bool env_flag(const char* name);

// The check after a kernel launch (SG_LAUNCH_CHECK in kernels/cuda_utils.cuh): cudaGetLastError, plus a
// cudaDeviceSynchronize under SPIKEGRAD_SYNC_AFTER_LAUNCH (read once per process). Throws naming file:line.
void check_launch(const char* file, int line);

void* cuda_raw_malloc(size_t bytes);
void cuda_raw_free(void* ptr);
// Copies between any devices. A copy to the host waits for the device, and is where pending device checks
// (below) are read.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
void zero_bytes(void* ptr, Device device, size_t bytes);
void cuda_synchronize();  // also reads pending device checks

// ---- Deferred device checks ------------------------------------------------------------------------------
// Some inputs can only be validated by reading every value (labels in [0,K), pixels in [0,1]). On the CPU
// the op checks before it runs. On CUDA a host-side check would copy the data to the host and wait for the
// device on every call — once per training or attack step. Instead the kernel that reads the data (or a
// small checking kernel) records one bad element in a device-side record, and the host reads that record
// only where it waits for the device anyway: the next copy to the host (item(), to_vector(), to(CPU)) or
// cuda_synchronize(). There the failure throws with the op's own message, naming the element (on CUDA one
// bad element, not necessarily the first). Like CUDA's own asynchronous errors, it surfaces after the call.
struct DeviceCheckRecord {
  int32_t failed;  // 0 until a kernel records a failure; the kernel that sets it (atomicCAS) fills the rest
  int32_t tag;     // which armed check failed
  int64_t index;   // the bad element
  double value;    // its value
};
// What a kernel needs to report a failure: kernels/cuda_utils.cuh's record_check_failure(check, i, v).
struct DeviceCheck {
  DeviceCheckRecord* record;  // device memory
  int32_t tag;
};
// The message of a failed check, from the bad element's index and value.
using DeviceCheckMessage = std::function<std::string(int64_t index, double value)>;
// Registers a check for the kernel launched right after it (needs CUDA; nothing that copies to the host
// may come between, or the read there would drop the check before its kernel ran). Of all the checks armed
// before a read, the first failure recorded is the one thrown; later ones are dropped with it.
DeviceCheck arm_device_check(DeviceCheckMessage message);
// Reads the record if checks are pending (one small copy; it waits for the device) and throws the recorded
// failure. copy_bytes and cuda_synchronize call it; nothing else needs to.
void raise_device_check_failure();

}  // namespace spikegrad
