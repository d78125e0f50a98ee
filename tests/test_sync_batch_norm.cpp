// Synchronised batch norm (BatchNormOptions::cross_replica, engine/batch_norm_options.h) without MPI: R
// simulated replicas, each holding B/R examples of every time step, must compute what one process holding
// the whole batch B computes — y, the running buffers and dx of its own slice; dweight and dbias summed
// over the replicas (data-parallel training all-reduces parameter gradients itself) — for ops::batch_norm
// and the fused ops::batch_norm_spike, on the CPU (float64, float32) and CUDA (float32; runs under the
// emulated backend); also with replicas of unequal batch sizes. Plus finite differences of the synchronised
// float64 path, and the sequence of calls the hook receives (its contract, which the MPI implementation of
// engine/distributed.h codes against).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/cuda_context.h"
#include "support/op_cases.h"

namespace spikegrad::testing {
namespace {

// R replicas of one data-parallel step on R threads that take turns, so only one thread at a time touches
// the engine (allocators, the emulated GPU) and every sum is deterministic: replica r runs until its next
// sum, deposits its values and hands over to r + 1; the last adds all deposits in replica order and hands
// back to replica 0, and each replica picks up the result when its turn comes again. A replica that makes
// a different call (another n) than the others fails the test instead of hanging.
class LockstepReplicas {
 public:
  explicit LockstepReplicas(int replicas) : R_(replicas), deposits_(static_cast<size_t>(replicas)) {}

  // Runs body(r, hook) for every replica r, each on its own thread, and returns when all are done.
  void run(const std::function<void(int, const ops::CrossReplicaSum&)>& body) {
    std::vector<Hook> hooks;
    for (int r = 0; r < R_; ++r) hooks.push_back(Hook(this, r));
    std::vector<std::thread> threads;
    for (int r = 0; r < R_; ++r)
      threads.emplace_back([&, r] {
        try {
          wait_turn(r);
          body(r, hooks[size_t(r)]);
          finish(r);
        } catch (...) {
          abort(std::current_exception());
        }
      });
    for (std::thread& t : threads) t.join();
    if (error_) std::rethrow_exception(error_);
  }

  // (n, host?) of every sum replica 0 made, in order.
  const std::vector<std::pair<int64_t, bool>>& calls() const { return calls_; }

 private:
  struct Hook final : ops::CrossReplicaSum {
    Hook(LockstepReplicas* o, int r) : owner(o), rank(r) {}
    void sum(double* values, int64_t n) const override { owner->sum(rank, values, n, true); }
    void sum_device(double* values, int64_t n) const override {
      std::vector<double> host(static_cast<size_t>(n));
      copy_bytes(host.data(), Device::CPU, values, Device::CUDA, size_t(n) * sizeof(double));
      owner->sum(rank, host.data(), n, false);
      copy_bytes(values, Device::CUDA, host.data(), Device::CPU, size_t(n) * sizeof(double));
    }
    LockstepReplicas* owner;
    int rank;
  };

  void sum(int r, double* values, int64_t n, bool host) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (r == 0) calls_.push_back({n, host});
    deposits_[size_t(r)].assign(values, values + n);
    if (r == R_ - 1) {
      result_.assign(size_t(n), 0.0);
      for (int k = 0; k < R_; ++k) {
        if (deposits_[size_t(k)].size() != size_t(n))
          fail_locked("replica " + std::to_string(k) + " summed " + std::to_string(deposits_[size_t(k)].size()) +
                      " values where replica " + std::to_string(r) + " summed " + std::to_string(n));
        for (int64_t i = 0; i < n; ++i) result_[size_t(i)] += deposits_[size_t(k)][size_t(i)];
      }
      hand_over_locked(0);
    } else {
      hand_over_locked(r + 1);
    }
    wait_turn_locked(lock, r);
    if (result_.size() != size_t(n)) fail_locked("replica " + std::to_string(r) + ": result size mismatch");
    std::copy(result_.begin(), result_.end(), values);
  }

  void finish(int r) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++finished_;
    if (r + 1 < R_)
      hand_over_locked(r + 1);
    else if (finished_ != R_)
      fail_locked("the last replica finished while others wait in a sum");
  }

  void wait_turn(int r) {
    std::unique_lock<std::mutex> lock(mutex_);
    wait_turn_locked(lock, r);
  }
  void wait_turn_locked(std::unique_lock<std::mutex>& lock, int r) {
    if (!cv_.wait_for(lock, std::chrono::seconds(300), [&] { return turn_ == r || error_; }))
      fail_locked("replica " + std::to_string(r) + " timed out waiting for its turn (replicas made different calls)");
    if (error_) throw Error("aborted: another replica failed");
  }
  void hand_over_locked(int r) {
    turn_ = r;
    cv_.notify_all();
  }
  [[noreturn]] void fail_locked(const std::string& why) {
    if (!error_) error_ = std::make_exception_ptr(Error("LockstepReplicas: " + why));
    cv_.notify_all();
    throw Error("LockstepReplicas: " + why);
  }
  void abort(std::exception_ptr e) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!error_) error_ = e;
    cv_.notify_all();
  }

  const int R_;
  std::mutex mutex_;
  std::condition_variable cv_;
  int turn_ = 0, finished_ = 0;
  std::vector<std::vector<double>> deposits_;
  std::vector<double> result_;
  std::vector<std::pair<int64_t, bool>> calls_;
  std::exception_ptr error_;
};

// How many examples of each time step every replica holds (they need not be equal: the count travels with
// the sums), summing to B.
using Split = std::vector<int64_t>;
Split equal_split(int64_t B, int R) { return Split(static_cast<size_t>(R), B / R); }
int64_t first_example(const Split& split, int r) {
  int64_t first = 0;
  for (int k = 0; k < r; ++k) first += split[size_t(k)];
  return first;
}

// x of shape (T·B, C, ...) time-major: replica r takes examples [first, first + split[r]) of every time step.
std::vector<double> batch_slice(const std::vector<double>& full, const Shape& shape, int64_t T, const Split& split,
                                int r) {
  const int64_t B = shape[0] / T, row = int64_t(full.size()) / shape[0], first = first_example(split, r);
  std::vector<double> out;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = first; b < first + split[size_t(r)]; ++b)
      out.insert(out.end(), full.begin() + (t * B + b) * row, full.begin() + (t * B + b + 1) * row);
  return out;
}
// The inverse: the replicas' slices (each as batch_slice cut it) back into one (T·B, ...) vector.
std::vector<double> batch_join(const std::vector<std::vector<double>>& parts, const Shape& shape, int64_t T,
                               const Split& split) {
  const int64_t B = shape[0] / T, row = int64_t(parts[0].size()) / (T * split[0]);
  std::vector<double> out(static_cast<size_t>(shape[0] * row));
  for (int r = 0; r < int(parts.size()); ++r) {
    const int64_t first = first_example(split, r), per = split[size_t(r)];
    for (int64_t t = 0; t < T; ++t)
      for (int64_t b = 0; b < per; ++b)
        std::copy(parts[size_t(r)].begin() + (t * per + b) * row, parts[size_t(r)].begin() + (t * per + b + 1) * row,
                  out.begin() + (t * B + first + b) * row);
  }
  return out;
}
Shape replica_shape(Shape shape, int64_t T, int64_t examples) {
  shape[0] = T * examples;
  return shape;
}

// One step's results (all on the host, in float64).
struct StepResult {
  std::vector<double> y, dx, dweight, dbias, running_mean, running_var;
};

enum class Layer { plain, fused_smooth, fused_spiking };

// The layer under test on inputs x, r (the loss is Σ y·r), with weight/bias/running buffers from `init`.
struct Problem {
  Shape shape;  // (T·B, C, H, W) or (T·B, C)
  int64_t T = 1;
  Layer layer = Layer::plain;
  DType dtype = DType::F64;
  Device device = Device::CPU;
  std::vector<double> x, r, weight, bias, running_mean, running_var;

  Problem(Shape s, int64_t steps, Layer l, DType d, Device dev, uint64_t seed)
      : shape(s), T(steps), layer(l), dtype(d), device(dev) {
    const int64_t C = shape[1];
    x = randn(shape, DType::F64, seed, 1.5).to_vector<double>();
    for (double& v : x) v += 0.7;  // a nonzero mean, so Σx matters
    r = randn(shape, DType::F64, seed + 1).to_vector<double>();
    weight = uniform({C}, DType::F64, seed + 2, 0.5, 1.5).to_vector<double>();
    bias = randn({C}, DType::F64, seed + 3, 0.5).to_vector<double>();
    running_mean = randn({C}, DType::F64, seed + 4, 0.5).to_vector<double>();
    running_var = uniform({C}, DType::F64, seed + 5, 0.5, 2.0).to_vector<double>();
  }

  Tensor make(const std::vector<double>& v, const Shape& s) const {
    return Tensor::from_vector(v, s).to(dtype).to(device);
  }

  // One forward + backward on x_part (shape part_shape) with the given hook (null: a plain single process).
  StepResult step(const std::vector<double>& x_part, const std::vector<double>& r_part, const Shape& part_shape,
                  const ops::CrossReplicaSum* hook) const {
    const int64_t C = shape[1];
    Tensor xt = make(x_part, part_shape), rt = make(r_part, part_shape);
    Tensor w = make(weight, {C}), b = make(bias, {C}), rm = make(running_mean, {C}), rv = make(running_var, {C});
    for (Tensor* t : {&xt, &w, &b}) t->set_requires_grad(true);
    ops::BatchNormOptions bn;
    bn.cross_replica = hook;
    Tape tape;
    Tensor y;
    if (layer == Layer::plain) {
      y = ops::batch_norm(tape, xt, w, b, rm, rv, bn);
    } else {
      ops::SpikeOptions opt;
      opt.smooth = layer == Layer::fused_smooth;
      y = ops::batch_norm_spike(tape, xt, w, b, rm, rv, bn, T, opt);
    }
    tape.backward(ops::sum(tape, ops::mul(tape, y, rt)));
    auto host = [](const Tensor& t) { return t.to(Device::CPU).to(DType::F64).to_vector<double>(); };
    return {host(y), host(xt.grad()), host(w.grad()), host(b.grad()), host(rm), host(rv)};
  }

  StepResult single() const { return step(x, r, shape, nullptr); }

  // Replicas holding `split` examples each: y and dx joined back into the full batch, dweight and dbias
  // summed over the replicas, the running buffers of replica 0 (all replicas' are checked to agree bit for
  // bit).
  StepResult replicated(const Split& split, LockstepReplicas& lockstep) const {
    const int R = int(split.size());
    std::vector<StepResult> parts(static_cast<size_t>(R));
    lockstep.run([&](int rank, const ops::CrossReplicaSum& hook) {
      parts[size_t(rank)] = step(batch_slice(x, shape, T, split, rank), batch_slice(r, shape, T, split, rank),
                                 replica_shape(shape, T, split[size_t(rank)]), &hook);
    });
    StepResult joined = parts[0];
    std::vector<std::vector<double>> ys, dxs;
    for (int k = 0; k < R; ++k) {
      ys.push_back(parts[size_t(k)].y);
      dxs.push_back(parts[size_t(k)].dx);
      EXPECT_EQ(parts[size_t(k)].running_mean, parts[0].running_mean) << "replica " << k;
      EXPECT_EQ(parts[size_t(k)].running_var, parts[0].running_var) << "replica " << k;
      for (size_t c = 0; k > 0 && c < joined.dweight.size(); ++c) {
        joined.dweight[c] += parts[size_t(k)].dweight[c];
        joined.dbias[c] += parts[size_t(k)].dbias[c];
      }
    }
    joined.y = batch_join(ys, shape, T, split);
    joined.dx = batch_join(dxs, shape, T, split);
    return joined;
  }
};

void expect_vectors_close(const std::vector<double>& actual, const std::vector<double>& expected, double tol,
                          const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i)
    ASSERT_NEAR(actual[i], expected[i], tol * (1 + std::abs(expected[i]))) << what << " [" << i << "]";
}

void expect_same_step(const Problem& p, const Split& split, double tol) {
  const StepResult one = p.single();
  LockstepReplicas lockstep(int(split.size()));
  const StepResult many = p.replicated(split, lockstep);
  expect_vectors_close(many.y, one.y, tol, "y");
  expect_vectors_close(many.running_mean, one.running_mean, tol, "running_mean");
  expect_vectors_close(many.running_var, one.running_var, tol, "running_var");
  expect_vectors_close(many.dx, one.dx, tol, "dx");
  expect_vectors_close(many.dweight, one.dweight, tol, "dweight (summed over replicas)");
  expect_vectors_close(many.dbias, one.dbias, tol, "dbias (summed over replicas)");
  // The calls of the contract: count, Σx, Σ(x − mean)², then backward's Σdy and Σdy·xhat.
  const int64_t C = p.shape[1];
  const bool host = p.device == Device::CPU;
  const std::vector<std::pair<int64_t, bool>> expected{{1, true}, {C, host}, {C, host}, {2 * C, host}};
  EXPECT_EQ(lockstep.calls(), expected);
}

// Without the synchronisation the replicas' statistics differ from the whole batch's: the check above can
// fail (per-replica statistics, as PyTorch DDP without SyncBatchNorm).
TEST(SyncBatchNorm, UnsyncedReplicasDiffer) {
  const Problem p({8, 3, 2, 3}, 1, Layer::plain, DType::F64, Device::CPU, 11);
  const Split halves = equal_split(8, 2);
  const StepResult whole = p.single(),
                   part = p.step(batch_slice(p.x, p.shape, 1, halves, 0), batch_slice(p.r, p.shape, 1, halves, 0),
                                 replica_shape(p.shape, 1, 4), nullptr);
  EXPECT_NE(part.running_mean, whole.running_mean);
  EXPECT_GT(std::abs(part.y[0] - whole.y[0]), 1e-3);
}

TEST(SyncBatchNorm, PlainTwoReplicasMatchOneProcessFloat64) {
  expect_same_step(Problem({8, 3, 2, 3}, 1, Layer::plain, DType::F64, Device::CPU, 21), equal_split(8, 2), 1e-12);
}
TEST(SyncBatchNorm, PlainFourReplicasTimeMajor2dFloat64) {
  expect_same_step(Problem({2 * 8, 5}, 2, Layer::plain, DType::F64, Device::CPU, 31), equal_split(8, 4), 1e-12);
}
TEST(SyncBatchNorm, PlainTwoReplicasMatchOneProcessFloat32) {
  expect_same_step(Problem({8, 3, 3, 5}, 1, Layer::plain, DType::F32, Device::CPU, 41), equal_split(8, 2), 2e-5);
}
TEST(SyncBatchNorm, FusedSmoothTwoReplicasMatchOneProcessFloat64) {
  expect_same_step(Problem({3 * 4, 2, 3, 3}, 3, Layer::fused_smooth, DType::F64, Device::CPU, 51), equal_split(4, 2),
                   1e-12);
}
TEST(SyncBatchNorm, FusedSpikingTwoReplicasMatchOneProcessFloat64) {
  expect_same_step(Problem({2 * 6, 3, 2, 2}, 2, Layer::fused_spiking, DType::F64, Device::CPU, 61), equal_split(6, 2),
                   1e-12);
}
// Replicas with different batch sizes (the last, short batch of an epoch): the count is summed too.
TEST(SyncBatchNorm, UnequalReplicaBatchesMatchOneProcessFloat64) {
  expect_same_step(Problem({2 * 7, 3, 2, 3}, 2, Layer::plain, DType::F64, Device::CPU, 65), Split{2, 5}, 1e-12);
  expect_same_step(Problem({2 * 7, 3, 2, 3}, 2, Layer::fused_smooth, DType::F64, Device::CPU, 66), Split{4, 1, 2},
                   1e-12);
}
TEST(SyncBatchNorm, FusedSmoothTwoReplicasMatchOneProcessFloat32) {
  expect_same_step(Problem({2 * 4, 3, 3, 3}, 2, Layer::fused_smooth, DType::F32, Device::CPU, 71), equal_split(4, 2),
                   2e-5);
}

// Eval mode reads the running buffers only: no sums, and the hook is never called.
TEST(SyncBatchNorm, EvalModeNeverCallsTheHook) {
  const Problem p({4, 2, 2, 2}, 1, Layer::plain, DType::F64, Device::CPU, 81);
  LockstepReplicas lockstep(1);
  lockstep.run([&](int, const ops::CrossReplicaSum& hook) {
    ops::BatchNormOptions bn;
    bn.training = false;
    bn.cross_replica = &hook;
    Tape tape;
    Tensor x = p.make(p.x, p.shape);
    x.set_requires_grad(true);
    Tensor y = ops::batch_norm(tape, x, p.make(p.weight, {2}), p.make(p.bias, {2}), p.make(p.running_mean, {2}),
                               p.make(p.running_var, {2}), bn);
    tape.backward(ops::sum(tape, y));
  });
  EXPECT_TRUE(lockstep.calls().empty());
}

// Central differences of L = Σ_r Σ y_r·r_r, the whole data-parallel step as a function of the full batch
// x and the (shared) weight, against the synchronised backward's dx and Σ_r dweight_r.
void check_synced_finite_differences(Layer layer, int64_t T, const Shape& shape, uint64_t seed) {
  const int R = 2;
  Problem p(shape, T, layer, DType::F64, Device::CPU, seed);
  auto loss = [&](const Problem& q) {
    LockstepReplicas lockstep(R);
    const StepResult s = q.replicated(equal_split(q.shape[0] / q.T, R), lockstep);
    double l = 0;
    for (size_t i = 0; i < s.y.size(); ++i) l += s.y[i] * q.r[i];
    return l;
  };
  LockstepReplicas lockstep(R);
  const StepResult analytic = p.replicated(equal_split(shape[0] / T, R), lockstep);
  const double h = 1e-6;
  auto numeric = [&](std::vector<double>& v, size_t i) {
    const double saved = v[i];
    v[i] = saved + h;
    const double up = loss(p);
    v[i] = saved - h;
    const double down = loss(p);
    v[i] = saved;
    return (up - down) / (2 * h);
  };
  for (size_t i = 0; i < p.x.size(); i += 5) {
    const double n = numeric(p.x, i);
    EXPECT_NEAR(analytic.dx[i], n, 1e-7 + 1e-5 * std::abs(n)) << "dx[" << i << "]";
  }
  for (size_t c = 0; c < p.weight.size(); ++c) {
    const double n = numeric(p.weight, c);
    EXPECT_NEAR(analytic.dweight[c], n, 1e-7 + 1e-5 * std::abs(n)) << "dweight[" << c << "]";
  }
}

TEST(SyncBatchNorm, PlainGradientsMatchFiniteDifferences) {
  check_synced_finite_differences(Layer::plain, 1, {6, 2, 2, 2}, 91);
}
TEST(SyncBatchNorm, FusedSmoothGradientsMatchFiniteDifferences) {
  check_synced_finite_differences(Layer::fused_smooth, 2, {2 * 4, 2, 2, 2}, 101);
}

// CUDA (float32): the launchers' stages and the device hook. Per replica 12·225 = 2700 elements per channel
// split the reductions over several blocks (scalar path: S = 225 is not a multiple of 4); the 4x4 case runs
// the float4 path with one block per channel.
TEST(SyncBatchNorm, CudaPlainSplitReductionsMatchOneProcess) {
  SG_SKIP_WITHOUT_CUDA();
  expect_same_step(Problem({24, 2, 15, 15}, 1, Layer::plain, DType::F32, Device::CUDA, 111), equal_split(24, 2), 2e-5);
}
TEST(SyncBatchNorm, CudaPlainFloat4MatchesOneProcess) {
  SG_SKIP_WITHOUT_CUDA();
  expect_same_step(Problem({8, 3, 4, 4}, 1, Layer::plain, DType::F32, Device::CUDA, 121), equal_split(8, 2), 2e-5);
}
TEST(SyncBatchNorm, CudaFusedSmoothMatchesOneProcess) {
  SG_SKIP_WITHOUT_CUDA();
  expect_same_step(Problem({2 * 4, 3, 3, 3}, 2, Layer::fused_smooth, DType::F32, Device::CUDA, 131), equal_split(4, 2),
                   2e-5);
}
// The synchronised CUDA path against the synchronised CPU path on the same replicas.
TEST(SyncBatchNorm, CudaFusedMatchesCpuFused) {
  SG_SKIP_WITHOUT_CUDA();
  Problem gpu({2 * 4, 3, 3, 3}, 2, Layer::fused_smooth, DType::F32, Device::CUDA, 141);
  Problem cpu = gpu;
  cpu.device = Device::CPU;
  LockstepReplicas a(2), b(2);
  const StepResult g = gpu.replicated(equal_split(4, 2), a), c = cpu.replicated(equal_split(4, 2), b);
  expect_vectors_close(g.y, c.y, 1e-5, "cuda vs cpu y");
  expect_vectors_close(g.dx, c.dx, 1e-5, "cuda vs cpu dx");
  expect_vectors_close(g.dweight, c.dweight, 1e-5, "cuda vs cpu dweight");
  expect_vectors_close(g.running_var, c.running_var, 1e-6, "cuda vs cpu running_var");
}

}  // namespace
}  // namespace spikegrad::testing
