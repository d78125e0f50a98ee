// The tape: a vector of nodes in execution order, walked in reverse by backward().
//
// An op records one node when grad mode is on and at least one input requires a gradient. The node
// keeps its inputs and outputs alive and a backward closure that captures only what the op needs.
// BPTT lives inside fused multi-step ops, so the tape holds one node per layer, not per time step.
//
// Backward contract for every node: `backward(grad_outputs, grad_inputs)` receives the gradient of
// each output (zeros where an output got none) and, for each input, either nullptr (no gradient is
// wanted there) or a buffer to ACCUMULATE into (`+=`) of the input's shape, dtype and device.
//
// Gradients are computed only where needed: a node runs only if one of its inputs leads back to a
// wanted leaf, and grad_inputs[i] is nullptr unless input i does. `backward(loss)` wants every leaf
// that requires grad and accumulates into its .grad(); `grad(loss, wrt)` wants only `wrt` and returns
// their gradients without touching any .grad() (attacks use it: d loss / d input, parameters untouched).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace spikegrad {

using BackwardFn = std::function<void(const std::vector<Tensor>& grad_outputs, const std::vector<Tensor*>& grad_inputs)>;

struct TapeNode {
  std::string op;
  std::vector<Tensor> inputs;
  std::vector<Tensor> outputs;
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
  void record(std::string op, std::vector<Tensor> inputs, std::vector<Tensor> outputs, BackwardFn backward);

  // loss must be a single-element floating tensor produced on this tape (or a leaf).
  void backward(const Tensor& loss);
  std::vector<Tensor> grad(const Tensor& loss, const std::vector<Tensor>& wrt);
  // Vector-Jacobian product: gradients of sum(y * grad_y) w.r.t. wrt, for a y of any shape.
  std::vector<Tensor> vjp(const Tensor& y, const Tensor& grad_y, const std::vector<Tensor>& wrt);

  void clear() { nodes_.clear(); }
  size_t size() const { return nodes_.size(); }
  const std::vector<TapeNode>& nodes() const { return nodes_; }

 private:
  std::vector<Tensor> run(const Tensor& y, const Tensor& grad_y, const std::vector<Tensor>& wanted, bool into_leaf_grads);
  std::vector<TapeNode> nodes_;
};

}  // namespace spikegrad
