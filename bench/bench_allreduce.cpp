// The gradient all-reduce of data-parallel training (engine/distributed.h): time of one in-place float sum
// over the ranks vs message size, through the same Communicator::sum the gradient buckets use (MPI_Iallreduce
// polled with MPI_Test). Run it under MPI:
//     mpirun -np 2 --oversubscribe --allow-run-as-root build/bench/bench_allreduce
// Without mpirun every case is skipped. Rank 0 reports; the other ranks run the same cases silently.
//
// Counters (NCCL's conventions, so numbers compare with nccl-tests):
//   algbw_GB = GB / time (shown as GB/s);  busbw_GB = algbw * 2(N-1)/N, the bytes each rank's link carries in a ring all-reduce
//   (reduce-scatter then all-gather: each rank sends and receives 2(N-1)/N of the message), so busbw is
//   comparable with the link's bandwidth whatever N.
// Iterations are fixed per size (not Google Benchmark's adaptive count): every rank must issue the same
// number of collectives, or a rank would wait for a sum the others never start.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <vector>

#include "engine/distributed.h"

namespace {

using spikegrad::dist::world;

void BM_allreduce_sum_f32(benchmark::State& state) {
  if (!world().distributed()) {
    state.SkipWithError("run under mpirun -np N (N >= 2): a one-process sum is a no-op");
    return;
  }
  const int64_t n = state.range(0) / int64_t(sizeof(float));
  std::vector<float> values(size_t(n), 1.0f);
  world().sum(values.data(), n, "the warm-up sum");  // connections and buffers set up outside the timing
  for (auto _ : state) {
    // Every rank starts together, so a rank's time is the collective's, not the wait for a late peer.
    double start_together = 0;
    world().sum(&start_together, 1, "the benchmark's barrier");
    const auto t0 = std::chrono::steady_clock::now();
    world().sum(values.data(), n, "the benchmarked sum");
    const auto t1 = std::chrono::steady_clock::now();
    // The slowest rank's time is the step's: the maximum over ranks (as a sum of one-hot slots).
    std::vector<double> seconds(size_t(world().size()), 0.0);
    seconds[size_t(world().rank())] = std::chrono::duration<double>(t1 - t0).count();
    world().sum(seconds.data(), int64_t(seconds.size()), "the benchmark's timings");
    double slowest = 0;
    for (double s : seconds) slowest = std::max(slowest, s);
    state.SetIterationTime(slowest);
  }
  const double bytes = double(state.range(0));
  const double ranks = double(world().size());
  state.counters["ranks"] = ranks;
  state.counters["algbw_GB"] =
      benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["busbw_GB"] =
      benchmark::Counter(bytes * 1e-9 * 2.0 * (ranks - 1.0) / ranks, benchmark::Counter::kIsIterationInvariantRate);
}

// 4 KiB (a small model's last bucket) to 64 MiB (beyond DDP's 25 MiB bucket); fewer iterations when large.
void sizes(benchmark::internal::Benchmark* b) {
  for (int64_t bytes = 4 << 10; bytes <= (int64_t(64) << 20); bytes *= 4) b->Arg(bytes);
}

BENCHMARK(BM_allreduce_sum_f32)->Apply(sizes)->Iterations(20)->UseManualTime()->Unit(benchmark::kMicrosecond);

// Ranks other than 0 run every case (the collectives need them) and print nothing.
class SilentReporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

}  // namespace

int main(int argc, char** argv) {
  spikegrad::dist::init_distributed(&argc, &argv);
  benchmark::Initialize(&argc, argv);
  if (world().rank() == 0) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    SilentReporter silent;
    benchmark::RunSpecifiedBenchmarks(&silent);
  }
  benchmark::Shutdown();
  spikegrad::dist::finalize_distributed();
  return 0;
}
