// cudaemu scheduler: runs a launch block by block, each CUDA thread a Boost.Context fiber.
//
// A block's threads run, one at a time and in the configured order, until each has finished or waits at a
// barrier or warp collective. Then the scheduler resolves what can be resolved (a warp group whose every
// named lane has arrived, or the block barrier once every live thread waits at the same call site) and
// runs again. Anything CUDA forbids (a divergent barrier, a mask naming an absent lane, a deadlock, too
// much shared memory, a write past a shared or global buffer) ends the launch with a message naming the
// kernel, the block, the thread and the file:line; the launch then reports cudaErrorLaunchFailure.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <boost/context/fiber.hpp>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "internal.h"

namespace cudaemu {

namespace bctx = boost::context;

namespace {
thread_local ThreadCoords* current_thread = nullptr;


// ---- fiber stacks: mmap'd once, guard page below, reused across blocks ---------------------------
constexpr size_t kStackBytes = size_t(256) << 10;

class StackPool {
 public:
  bctx::stack_context take() {
    void* base;
    if (free_.empty()) {
      const size_t page = size_t(sysconf(_SC_PAGESIZE));
      base = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                  -1, 0);
      if (base == MAP_FAILED) {
        std::fprintf(stderr, "cudaemu: cannot map a %zu-byte fiber stack\n", kStackBytes);
        std::abort();
      }
      mprotect(base, page, PROT_NONE);  // a thread overflowing its stack faults instead of corrupting memory
      base = static_cast<char*>(base) + page;
    } else {
      base = free_.back();
      free_.pop_back();
    }
    bctx::stack_context sc;
    sc.size = kStackBytes;
    sc.sp = static_cast<char*>(base) + kStackBytes;
    return sc;
  }
  void give_back(bctx::stack_context& sc) { free_.push_back(static_cast<char*>(sc.sp) - sc.size); }

 private:
  std::vector<void*> free_;
};
thread_local StackPool stack_pool;

struct PooledStack {
  bctx::stack_context allocate() { return stack_pool.take(); }
  void deallocate(bctx::stack_context& sc) noexcept { stack_pool.give_back(sc); }
};

enum class ThreadState { Runnable, AtBarrier, AtWarpOp, Done, Faulted };

struct EmuThread {
  ThreadCoords coords;
  unsigned linear = 0, lane = 0, warp = 0;
  ThreadState state = ThreadState::Runnable;
  bool started = false;
  bctx::fiber fiber;      // the suspended thread
  bctx::fiber scheduler;  // the scheduler, while this thread runs
  const char* wait_file = nullptr;
  int wait_line = 0;
  WarpRequest* request = nullptr;
};

struct BlockRun {
  LaunchState* launch = nullptr;
  std::vector<EmuThread> threads;
  EmuThread* current = nullptr;
  SharedArena shared;
};
thread_local BlockRun* current_block = nullptr;

std::string coord(uint3 v) {
  std::ostringstream s;
  s << "(" << v.x << "," << v.y << "," << v.z << ")";
  return s.str();
}
std::string where(const char* file, int line) { return std::string(file ? file : "?") + ":" + std::to_string(line); }

std::string thread_name(const BlockRun& b, const EmuThread& t) {
  return "block " + coord(t.coords.block_idx) + ", thread " + coord(t.coords.thread_idx);
}

void fail_thread(BlockRun& b, const EmuThread& t, const std::string& what) {
  if (b.launch->fault.empty()) b.launch->fault = launch_name(*b.launch) + ", " + thread_name(b, t) + ": " + what;
}
void fail_block(BlockRun& b, uint3 block_idx, const std::string& what) {
  if (b.launch->fault.empty()) b.launch->fault = launch_name(*b.launch) + ", block " + coord(block_idx) + ": " + what;
}

// Hands control from the running CUDA thread back to the scheduler; returns when it is resumed.
void yield_to_scheduler() {
  EmuThread& t = *current_block->current;
  t.scheduler = std::move(t.scheduler).resume();
}

void resume(BlockRun& b, EmuThread& t) {
  b.current = &t;
  current_thread = &t.coords;
  if (!t.started) {
    t.started = true;
    t.fiber = bctx::fiber(std::allocator_arg, PooledStack{}, [&t, &b](bctx::fiber&& scheduler) {
      t.scheduler = std::move(scheduler);
      b.launch->body(b.launch->closure);
      t.state = ThreadState::Done;
      return std::move(t.scheduler);
    });
  }
  t.fiber = std::move(t.fiber).resume();
  current_thread = nullptr;
  b.current = nullptr;
}

std::string mask_hex(unsigned mask) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", mask);
  return buf;
}
std::string describe(const WarpRequest& r) {
  return std::string(r.kind == WarpOpKind::Wmma ? r.op_name : warp_op_name(r.kind)) + "(mask " + mask_hex(r.mask) +
         ") at " + where(r.file, r.line);
}

// Shuffles and votes of one resolved group; `lanes` holds the group's requests indexed by lane.
bool compute_shuffle(BlockRun& b, EmuThread& first, WarpRequest* const* by_lane, unsigned mask) {
  for (int l = 0; l < 32; ++l) {
    WarpRequest* r = by_lane[l];
    if (!r) continue;
    const int w = r->width;
    if (w <= 0 || w > 32 || (w & (w - 1))) {
      fail_thread(b, first, describe(*r) + ": width " + std::to_string(w) + " is not a power of two up to 32");
      return false;
    }
    const int base = l & ~(w - 1);
    int src = l;
    switch (r->kind) {
      case WarpOpKind::ShflIdx: src = base + (r->arg & (w - 1)); break;
      case WarpOpKind::ShflUp: src = l - r->arg >= base ? l - r->arg : l; break;
      case WarpOpKind::ShflDown: src = l + r->arg < base + w ? l + r->arg : l; break;
      case WarpOpKind::ShflXor: src = (l ^ r->arg) < base + w && (l ^ r->arg) >= base ? l ^ r->arg : l; break;
      default: break;
    }
    if (!((mask >> src) & 1u)) {
      fail_thread(b, first,
                  describe(*r) + ": lane " + std::to_string(l) + " reads lane " + std::to_string(src) +
                      ", which is not in the mask (its value is undefined on a GPU)");
      return false;
    }
    r->result = by_lane[src]->value;
  }
  return true;
}

void compute_vote(WarpRequest* const* by_lane) {
  unsigned ballot = 0, count = 0, members = 0;
  for (int l = 0; l < 32; ++l)
    if (by_lane[l]) {
      ++members;
      if (by_lane[l]->value) {
        ballot |= 1u << l;
        ++count;
      }
    }
  for (int l = 0; l < 32; ++l) {
    WarpRequest* r = by_lane[l];
    if (!r) continue;
    if (r->kind == WarpOpKind::Ballot) r->result = ballot;
    if (r->kind == WarpOpKind::Any) r->result = count > 0;
    if (r->kind == WarpOpKind::All) r->result = count == members;
  }
}

// Resolves every warp group whose named lanes have all arrived. False when none could be (or on a fault).
bool resolve_warp_ops(BlockRun& b) {
  bool any = false;
  const unsigned n = unsigned(b.threads.size());
  for (EmuThread& t : b.threads) {
    if (t.state != ThreadState::AtWarpOp) continue;
    const WarpRequest& r = *t.request;
    if (!((r.mask >> t.lane) & 1u)) {
      fail_thread(b, t, describe(r) + ": the mask does not include the calling lane " + std::to_string(t.lane));
      return false;
    }
    if (r.kind == WarpOpKind::Wmma && r.mask != 0xffffffffu) {
      fail_thread(b, t, describe(r) + ": wmma operations need the whole warp");
      return false;
    }
    WarpRequest* by_lane[32] = {};
    bool ready = true;
    for (unsigned l = 0; l < 32; ++l) {
      if (!((r.mask >> l) & 1u)) continue;
      const unsigned linear = t.warp * 32 + l;
      if (linear >= n) {
        fail_thread(b, t,
                    describe(r) + ": the mask names lane " + std::to_string(l) + ", which does not exist in a block of " +
                        std::to_string(n) + " threads");
        return false;
      }
      EmuThread& o = b.threads[linear];
      if (o.state == ThreadState::Done) {
        fail_thread(b, t, describe(r) + ": the mask names lane " + std::to_string(l) + " (thread " +
                              coord(o.coords.thread_idx) + "), which has already exited");
        return false;
      }
      if (o.state != ThreadState::AtWarpOp) {
        ready = false;
        continue;
      }
      const WarpRequest& q = *o.request;
      if (q.kind != r.kind || q.mask != r.mask || q.resolve != r.resolve) {
        fail_thread(b, t, "lane " + std::to_string(t.lane) + " calls " + describe(r) + " while lane " +
                              std::to_string(l) + " calls " + describe(q));
        return false;
      }
      by_lane[l] = o.request;
      o.request->lane = int(l);
    }
    if (!ready) continue;
    switch (r.kind) {
      case WarpOpKind::SyncWarp: break;
      case WarpOpKind::Ballot:
      case WarpOpKind::Any:
      case WarpOpKind::All: compute_vote(by_lane); break;
      case WarpOpKind::Wmma: {
        WarpRequest* lanes[32];
        int count = 0;
        for (int l = 0; l < 32; ++l)
          if (by_lane[l]) lanes[count++] = by_lane[l];
        r.resolve(lanes, count);
        break;
      }
      default:
        if (!compute_shuffle(b, t, by_lane, r.mask)) return false;
    }
    if (!b.launch->fault.empty()) return false;  // a wmma resolver found its operands inconsistent
    for (unsigned l = 0; l < 32; ++l)
      if (by_lane[l]) b.threads[t.warp * 32 + l].state = ThreadState::Runnable;
    any = true;
  }
  return any;
}

// Releases the block barrier when every live thread waits at one call site. False when it cannot.
bool release_barrier(BlockRun& b) {
  EmuThread* first = nullptr;
  EmuThread* exited = nullptr;
  for (EmuThread& t : b.threads) {
    if (t.state == ThreadState::AtWarpOp) return false;
    if (t.state == ThreadState::Done && !exited) exited = &t;
    if (t.state != ThreadState::AtBarrier) continue;
    if (!first) {
      first = &t;
    } else if (t.wait_line != first->wait_line || std::strcmp(t.wait_file, first->wait_file) != 0) {
      fail_thread(b, t,
                  "waits at __syncthreads at " + where(t.wait_file, t.wait_line) + " while thread " +
                      coord(first->coords.thread_idx) + " waits at __syncthreads at " +
                      where(first->wait_file, first->wait_line) + " (a barrier in divergent code)");
      return false;
    }
  }
  if (!first) return false;
  if (exited) {
    fail_thread(b, *first,
                "waits at __syncthreads at " + where(first->wait_file, first->wait_line) + " but thread " +
                    coord(exited->coords.thread_idx) +
                    " has already exited without reaching it (a barrier in divergent code)");
    return false;
  }
  for (EmuThread& t : b.threads)
    if (t.state == ThreadState::AtBarrier) t.state = ThreadState::Runnable;
  return true;
}

void report_deadlock(BlockRun& b) {
  const EmuThread* at_barrier = nullptr;
  const EmuThread* at_warp = nullptr;
  for (const EmuThread& t : b.threads) {
    if (t.state == ThreadState::AtBarrier && !at_barrier) at_barrier = &t;
    if (t.state == ThreadState::AtWarpOp && !at_warp) at_warp = &t;
  }
  if (at_warp && at_barrier)
    fail_thread(b, *at_warp,
                "deadlock: waits in " + describe(*at_warp->request) + " for lanes that wait at __syncthreads at " +
                    where(at_barrier->wait_file, at_barrier->wait_line) + " (thread " +
                    coord(at_barrier->coords.thread_idx) + ")");
  else if (at_warp)
    fail_thread(b, *at_warp, "deadlock: waits in " + describe(*at_warp->request) + " for lanes that never arrive");
  else
    fail_block(b, b.threads.empty() ? uint3{0, 0, 0} : b.threads[0].coords.block_idx, "deadlock");
}

void arrange(std::vector<unsigned>& order, std::mt19937_64& rng) {
  switch (settings().order) {
    case Order::Launch: std::iota(order.begin(), order.end(), 0u); break;
    case Order::Reverse: std::iota(order.rbegin(), order.rend(), 0u); break;
    case Order::Random:
      std::iota(order.begin(), order.end(), 0u);
      std::shuffle(order.begin(), order.end(), rng);
      break;
  }
}

void run_block(LaunchState& launch, uint3 block_idx, std::mt19937_64& rng) {
  BlockRun b;
  b.launch = &launch;
  const dim3 bd = launch.block;
  const unsigned count = bd.x * bd.y * bd.z;
  b.threads.resize(count);
  for (unsigned i = 0; i < count; ++i) {
    EmuThread& t = b.threads[i];
    t.linear = i;
    t.lane = i % 32;
    t.warp = i / 32;
    t.coords.thread_idx = uint3{i % bd.x, (i / bd.x) % bd.y, i / (bd.x * bd.y)};
    t.coords.block_idx = block_idx;
    t.coords.block_dim = bd;
    t.coords.grid_dim = launch.grid;
  }
  b.shared.begin_block(launch.dynamic_smem);
  current_block = &b;
  std::vector<unsigned> order(count);
  arrange(order, rng);
  for (;;) {
    if (settings().order == Order::Random) arrange(order, rng);
    bool live = false;
    for (unsigned i : order) {
      EmuThread& t = b.threads[i];
      if (t.state != ThreadState::Runnable) continue;
      resume(b, t);
      if (!launch.fault.empty()) break;
    }
    if (!launch.fault.empty()) break;
    for (const EmuThread& t : b.threads) live |= t.state != ThreadState::Done;
    if (!live) break;
    if (resolve_warp_ops(b)) continue;
    if (!launch.fault.empty()) break;
    if (release_barrier(b)) continue;
    if (!launch.fault.empty()) break;
    report_deadlock(b);
    break;
  }
  // Threads still suspended (only after a fault) are discarded. Destroying a fiber unwinds its stack with
  // Boost.Context's forced-unwind exception; under AddressSanitizer a throw on a fiber stack trips false
  // reports, so there the fibers are kept, never resumed, in a list that lives as long as the process
  // (a faulted launch is a failing test anyway).
  for (EmuThread& t : b.threads) {
#if defined(__SANITIZE_ADDRESS__)
    static auto* abandoned = new std::vector<bctx::fiber>;
    if (t.fiber) abandoned->push_back(std::move(t.fiber));
#else
    t.fiber = bctx::fiber();
#endif
  }
  current_block = nullptr;
  const std::string overrun = b.shared.end_block();
  if (!overrun.empty()) fail_block(b, block_idx, overrun);
}

}  // namespace

std::string launch_name(const LaunchState& l) {
  return "kernel " + std::string(l.site.kernel) + " (launched at " + where(l.site.file, l.site.line) + ", grid " +
         coord(uint3{l.grid.x, l.grid.y, l.grid.z}) + ", block " + coord(uint3{l.block.x, l.block.y, l.block.z}) + ")";
}

bool inside_kernel() { return current_block != nullptr; }

void run_blocks(LaunchState& launch) {
  const dim3 g = launch.grid;
  const uint64_t blocks = uint64_t(g.x) * g.y * g.z;
  std::mt19937_64 rng(settings().seed * 0x9E3779B97F4A7C15ull + launch.sequence);
  std::vector<uint64_t> order(blocks);
  std::iota(order.begin(), order.end(), uint64_t(0));
  if (settings().order == Order::Reverse) std::reverse(order.begin(), order.end());
  if (settings().order == Order::Random) std::shuffle(order.begin(), order.end(), rng);
  for (uint64_t i : order) {
    const uint3 idx{unsigned(i % g.x), unsigned((i / g.x) % g.y), unsigned(i / (uint64_t(g.x) * g.y))};
    run_block(launch, idx, rng);
    if (!launch.fault.empty()) return;
  }
}

// ---- device-side entry points ---------------------------------------------------------------------------
ThreadCoords& coords() {
  if (current_thread) return *current_thread;
  std::fprintf(stderr, "cudaemu: threadIdx/blockIdx read outside a kernel (device code called from the host)\n");
  std::abort();
}

void syncthreads(const char* file, int line) {
  if (!current_block) {
    std::fprintf(stderr, "cudaemu: __syncthreads at %s:%d called outside a kernel\n", file, line);
    std::abort();
  }
  EmuThread& t = *current_block->current;
  t.state = ThreadState::AtBarrier;
  t.wait_file = file;
  t.wait_line = line;
  yield_to_scheduler();
}

void warp_collective(WarpRequest& request) {
  if (!current_block) {
    std::fprintf(stderr, "cudaemu: warp collective at %s:%d called outside a kernel\n", request.file, request.line);
    std::abort();
  }
  EmuThread& t = *current_block->current;
  t.state = ThreadState::AtWarpOp;
  t.request = &request;
  yield_to_scheduler();
  t.request = nullptr;
}

void collective_fault(const WarpRequest& request, const std::string& what) {
  BlockRun& b = *current_block;
  const unsigned linear = unsigned(request.lane);  // resolvers run lane by lane within one warp
  for (EmuThread& t : b.threads)
    if (t.request == &request) return fail_thread(b, t, describe(request) + ": " + what);
  fail_block(b, uint3{0, 0, 0}, describe(request) + ": " + what + " (lane " + std::to_string(linear) + ")");
}

void device_fault(const char* file, int line, const char* what) {
  if (!current_block) {
    std::fprintf(stderr, "cudaemu: %s at %s:%d (outside a kernel)\n", what, file, line);
    std::abort();
  }
  BlockRun& b = *current_block;
  EmuThread& t = *b.current;
  fail_thread(b, t, std::string(what) + " at " + where(file, line));
  t.state = ThreadState::Faulted;
  yield_to_scheduler();
  std::abort();  // a faulted thread is never resumed, only unwound
}

void* block_shared(const void* site, size_t bytes, size_t align, const char* name, const char* file, int line) {
  if (!current_block) {
    std::fprintf(stderr, "cudaemu: __shared__ %s at %s:%d used outside a kernel\n", name, file, line);
    std::abort();
  }
  // The message outlives this frame: a faulting thread is never resumed, so its locals are never destroyed.
  static thread_local std::string error;
  void* p = current_block->shared.variable(site, bytes, align, name, where(file, line), error);
  if (!p) device_fault(file, line, error.c_str());
  return p;
}

void* block_dynamic_shared(const char* name, const char* file, int line) {
  if (!current_block) {
    std::fprintf(stderr, "cudaemu: extern __shared__ %s at %s:%d used outside a kernel\n", name, file, line);
    std::abort();
  }
  return current_block->shared.dynamic();
}

}  // namespace cudaemu
