#include "engine/distributed_nccl.h"

#include "engine/check.h"

#ifdef SPIKEGRAD_NCCL
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <nccl.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <type_traits>

#include "engine/cuda_check.h"
#endif

namespace spikegrad::dist {

#ifdef SPIKEGRAD_NCCL

namespace {

// libnccl is opened on first use, not linked: the library is 200+ MB and only multi-process GPU runs need it,
// so the binaries (and the device bundle of scripts/gpu/) carry no dependency on it. The path CMake found
// first, then the loader's search path (LD_LIBRARY_PATH, the wheel's lib/ added there by the user).
struct NcclApi {
  decltype(&ncclGetUniqueId) get_unique_id = nullptr;
  decltype(&ncclCommInitRank) comm_init_rank = nullptr;
  decltype(&ncclAllReduce) all_reduce = nullptr;
  decltype(&ncclCommGetAsyncError) comm_get_async_error = nullptr;
  decltype(&ncclCommAbort) comm_abort = nullptr;
  decltype(&ncclCommDestroy) comm_destroy = nullptr;
  decltype(&ncclGetErrorString) get_error_string = nullptr;
  std::string error;  // why it could not be loaded; empty when loaded
};

const NcclApi& nccl() {
  static const NcclApi api = [] {
    NcclApi a;
    void* lib = dlopen(SPIKEGRAD_NCCL_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    if (!lib) lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      a.error = std::string("cannot open " SPIKEGRAD_NCCL_LIBRARY " or libnccl.so.2: ") + dlerror();
      return a;
    }
    auto load = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
      if (!fn && a.error.empty()) a.error = std::string("libnccl has no ") + name;
    };
    load(a.get_unique_id, "ncclGetUniqueId");
    load(a.comm_init_rank, "ncclCommInitRank");
    load(a.all_reduce, "ncclAllReduce");
    load(a.comm_get_async_error, "ncclCommGetAsyncError");
    load(a.comm_abort, "ncclCommAbort");
    load(a.comm_destroy, "ncclCommDestroy");
    load(a.get_error_string, "ncclGetErrorString");
    return a;
  }();
  SG_CHECK(api.error.empty(), "distributed: NCCL: " << api.error);
  return api;
}

void check_nccl(ncclResult_t result, const char* call) {
  SG_CHECK(result == ncclSuccess || result == ncclInProgress,
           "distributed: " << call << " failed: " << nccl().get_error_string(result));
}

}  // namespace

bool nccl_available() { return true; }

void select_local_gpu(const Communicator& comm) {
  int devices = 0;
  CUDA_CHECK(cudaGetDeviceCount(&devices));
  SG_CHECK(devices >= comm.local_size(), "distributed: " << comm.local_size() << " ranks on this machine but "
                                                         << devices << " visible GPU(s): NCCL needs one GPU per rank");
  CUDA_CHECK(cudaSetDevice(comm.local_rank() % devices));
}

struct NcclAverager::Impl {
  const Communicator* comm = nullptr;
  ncclComm_t nccl = nullptr;
  cudaStream_t stream = nullptr;
  std::vector<float*> buffers;             // one device buffer per bucket
  std::vector<int64_t> numel;
  std::vector<cudaEvent_t> copied;         // per bucket: its gradients are in the buffer (default stream)
  cudaEvent_t averaged = nullptr;          // the NCCL stream's work so far is done
  std::vector<bool> started;
};

NcclAverager::NcclAverager(const Communicator& comm, const std::vector<int64_t>& bucket_numel)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.comm = &comm;
  m.numel = bucket_numel;
  // The id travels over MPI: rank 0 creates it, every rank joins with it.
  ncclUniqueId id;
  std::string bytes;
  if (comm.rank() == 0) {
    check_nccl(nccl().get_unique_id(&id), "ncclGetUniqueId");
    bytes.assign(reinterpret_cast<const char*>(&id), sizeof id);
  }
  bytes = comm.broadcast(bytes, "the NCCL id");
  SG_CHECK(bytes.size() == sizeof id, "distributed: the NCCL id broadcast holds " << bytes.size() << " bytes, expected "
                                                                                  << sizeof id);
  std::memcpy(&id, bytes.data(), sizeof id);
  check_nccl(nccl().comm_init_rank(&m.nccl, comm.size(), id, comm.rank()), "ncclCommInitRank");
  CUDA_CHECK(cudaStreamCreateWithFlags(&m.stream, cudaStreamNonBlocking));
  CUDA_CHECK(cudaEventCreateWithFlags(&m.averaged, cudaEventDisableTiming));
  for (int64_t n : bucket_numel) {
    float* buffer = nullptr;
    CUDA_CHECK(cudaMalloc(&buffer, size_t(n) * sizeof(float)));
    m.buffers.push_back(buffer);
    cudaEvent_t e;
    CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    m.copied.push_back(e);
  }
  m.started.assign(bucket_numel.size(), false);
}

NcclAverager::~NcclAverager() {
  Impl& m = *impl_;
  if (m.nccl) nccl().comm_destroy(m.nccl);
  for (float* b : m.buffers) cudaFree(b);
  for (cudaEvent_t e : m.copied) cudaEventDestroy(e);
  if (m.averaged) cudaEventDestroy(m.averaged);
  if (m.stream) cudaStreamDestroy(m.stream);
}

void NcclAverager::start(size_t bucket, const std::vector<DeviceSlice>& grads) {
  Impl& m = *impl_;
  float* buffer = m.buffers.at(bucket);
  int64_t offset = 0;
  for (const DeviceSlice& g : grads) {
    const size_t bytes = size_t(g.numel) * sizeof(float);
    if (g.data) CUDA_CHECK(cudaMemcpyAsync(buffer + offset, g.data, bytes, cudaMemcpyDeviceToDevice, 0));
    else CUDA_CHECK(cudaMemsetAsync(buffer + offset, 0, bytes, 0));
    offset += g.numel;
  }
  SG_CHECK(offset == m.numel[bucket], "distributed: bucket " << bucket << " holds " << offset << " floats, expected "
                                                             << m.numel[bucket]);
  CUDA_CHECK(cudaEventRecord(m.copied[bucket], 0));
  CUDA_CHECK(cudaStreamWaitEvent(m.stream, m.copied[bucket], 0));
  check_nccl(nccl().all_reduce(buffer, buffer, size_t(offset), ncclFloat, ncclAvg, m.nccl, m.stream), "ncclAllReduce");
  m.started[bucket] = true;
}

void NcclAverager::finish(const std::vector<std::vector<DeviceSlice>>& grads) {
  Impl& m = *impl_;
  for (size_t b = 0; b < m.started.size(); ++b)
    SG_CHECK(m.started[b], "distributed: NCCL finish before bucket " << b << " was started");
  CUDA_CHECK(cudaEventRecord(m.averaged, m.stream));
  // The host waits with a deadline: a dead peer leaves ncclAllReduce spinning on the GPU forever.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(m.comm->timeout());
  for (;;) {
    const cudaError_t state = cudaEventQuery(m.averaged);
    if (state == cudaSuccess) break;
    SG_CHECK(state == cudaErrorNotReady, "distributed: waiting for the NCCL averages: " << cudaGetErrorString(state));
    ncclResult_t async = ncclSuccess;
    check_nccl(nccl().comm_get_async_error(m.nccl, &async), "ncclCommGetAsyncError");
    if (async != ncclSuccess && async != ncclInProgress) {
      nccl().comm_abort(m.nccl);
      m.nccl = nullptr;
      SG_FAIL("distributed: rank " << m.comm->rank() << ": the NCCL gradient average failed: "
                                   << nccl().get_error_string(async));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      nccl().comm_abort(m.nccl);
      m.nccl = nullptr;
      SG_FAIL("distributed: rank " << m.comm->rank() << " of " << m.comm->size() << ": the NCCL gradient average "
                                   << "timed out after " << m.comm->timeout() << " s waiting for the other ranks "
                                   << "(--collective-timeout)");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  for (size_t b = 0; b < grads.size(); ++b) {
    int64_t offset = 0;
    for (const DeviceSlice& g : grads[b]) {
      if (g.data)
        CUDA_CHECK(cudaMemcpyAsync(g.data, m.buffers[b] + offset, size_t(g.numel) * sizeof(float),
                                   cudaMemcpyDeviceToDevice, 0));
      offset += g.numel;
    }
    m.started[b] = false;
  }
}

#else  // built without NCCL (no CUDA, no MPI, or no NCCL found)

bool nccl_available() { return false; }

void select_local_gpu(const Communicator&) {
  SG_FAIL("distributed: this build has no NCCL: multi-process GPU training is not available");
}

struct NcclAverager::Impl {};

NcclAverager::NcclAverager(const Communicator&, const std::vector<int64_t>&) {
  SG_FAIL("distributed: this build has no NCCL (CMake found no nccl.h/libnccl with CUDA and MPI on): "
          "multi-process GPU training is not available");
}
NcclAverager::~NcclAverager() = default;
void NcclAverager::start(size_t, const std::vector<DeviceSlice>&) {}
void NcclAverager::finish(const std::vector<std::vector<DeviceSlice>>&) {}

#endif

}  // namespace spikegrad::dist
