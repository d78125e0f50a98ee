// The tape: a vector of nodes in execution order, walked in reverse by backward().
//
// An op records one node when grad mode is on and at least one input requires a gradient. The node keeps
// a backward closure that captures only what the op needs, and for its inputs and outputs only their
// identity and metadata (a weak reference): an activation that no backward needs is freed as soon as the
// forward drops it, so peak memory holds just what backward will read. BPTT lives inside fused
// multi-step ops, so the tape holds one node per layer, not per time step.
//
// Backward contract for every node: `backward(gy, gx)` receives the gradient of
// each output (zeros where an output got none) and, for each input, either nullptr (no gradient is
// wanted there) or a buffer to ACCUMULATE into (`+=`) of the input's shape, dtype and device.
//
// Gradients are computed only where needed: a node runs only if one of its inputs leads back to a
// wanted tensor, and gx[i] is nullptr unless input i does. `backward(loss)` wants every leaf
// that requires grad and accumulates into its .grad(); `grad(loss, wrt)` wants only `wrt` and returns
// their gradients without touching any .grad() (attacks use it: d loss / d input, parameters untouched).
//
// `backward(loss, on_grad_final)` also says when each leaf's gradient is final: right after the last node
// that reads the leaf ran (the walk is in reverse, so that is the lowest-index node with the leaf as an
// input), the gradient is written to .grad() and on_grad_final(leaf) is called, while backward goes on with
// the nodes before it. Data-parallel training starts the all-reduce of a gradient bucket there, overlapping
// the rest of backward (engine/distributed_gradients.h). Leaves no running node reads get their zeros at the
// end, and the hook then.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "engine/tensor.h"

namespace spikegrad {

using BackwardFn = std::function<void(const std::vector<Tensor>& gy, const std::vector<Tensor*>& gx)>;
// Called by backward(loss, hook) with a leaf whose .grad() holds its final gradient of this backward.
using GradFinalFn = std::function<void(const Tensor& leaf)>;

// What a node remembers of a tensor: enough to route and allocate its gradient, not its data.
struct TapeSlot {
  uint64_t id = 0;
  Shape shape;
  DType dtype = DType::F32;
  Device device = Device::CPU;
  bool requires_grad = false;
  std::weak_ptr<TensorImpl> tensor;  // to reach a leaf's .grad(); expired once nobody holds the tensor
};

struct TapeNode {
  std::string op;
  std::vector<TapeSlot> inputs;
  std::vector<TapeSlot> outputs;
  BackwardFn backward;
};

// Grad mode is per thread; NoGradGuard turns recording off for its scope (evaluation, attacks' updates).
bool grad_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

class Tape {
 public:
  // True when an op with these inputs must record (grad mode on and some input requires grad).
  static bool should_record(const std::vector<Tensor>& inputs);
  // Records a node; marks outputs as requiring grad. Call only when should_record() is true.
  void record(std::string op, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs, BackwardFn backward);

  // loss must be a single-element floating tensor produced on this tape (or a leaf).
  void backward(const Tensor& loss, const GradFinalFn& on_grad_final = nullptr);
  std::vector<Tensor> grad(const Tensor& loss, const std::vector<Tensor>& wrt);
  // Vector-Jacobian product: gradients of sum(y * gy) w.r.t. wrt, for a y of any shape.
  std::vector<Tensor> vjp(const Tensor& y, const Tensor& gy, const std::vector<Tensor>& wrt);

  void clear() { nodes_.clear(); }
  size_t size() const { return nodes_.size(); }
  const std::vector<TapeNode>& nodes() const { return nodes_; }

 private:
  // The nodes a backward runs and, per wanted tensor, after which node its gradient is final.
  struct Plan {
    std::vector<bool> active;            // node k leads back to a wanted tensor
    std::unordered_set<uint64_t> leads;  // tensors that lead back to a wanted tensor
    std::unordered_set<uint64_t> wanted_ids;
    std::unordered_map<uint64_t, size_t> final_after;  // wanted id -> lowest active node reading it
  };
  using GradBuffers = std::unordered_map<uint64_t, Tensor>;  // gradient buffers by tensor id

  // into_leaf_grads: accumulate into the wanted tensors' .grad() (and call on_grad_final) rather than only
  // returning the gradients.
  std::vector<Tensor> run(const Tensor& y, const Tensor& gy, const std::vector<Tensor>& wanted, bool into_leaf_grads,
                          const GradFinalFn& on_grad_final = nullptr);
  Plan plan(const std::vector<Tensor>& wanted) const;
  // Runs node k's backward if a gradient reached one of its outputs; frees the consumed output gradients.
  void run_node(size_t k, const Plan& plan, GradBuffers& grads);
  std::vector<TapeNode> nodes_;
};

}  // namespace spikegrad
