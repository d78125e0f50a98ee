#include "engine/tape.h"

#include <unordered_map>
#include <unordered_set>

#include "engine/ops.h"

namespace spikegrad {

namespace {
thread_local bool g_grad_enabled = true;
}

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = previous_; }

bool Tape::should_record(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.requires_grad()) return true;
  return false;
}

namespace {
TapeSlot slot_of(const Tensor& t) {
  return {t.impl()->id, t.shape(), t.dtype(), t.device(), t.requires_grad(), t.impl_ptr()};
}
}  // namespace

void Tape::record(std::string op, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
                  BackwardFn backward) {
  TapeNode node{std::move(op), {}, {}, std::move(backward)};
  for (const Tensor& in : inputs) node.inputs.push_back(slot_of(in));
  for (const Tensor& o : outputs) {
    o.impl()->requires_grad = true;
    node.outputs.push_back(slot_of(o));
  }
  nodes_.push_back(std::move(node));
}

void Tape::backward(const Tensor& loss) {
  // Leaves: inputs that require grad and that no node produced. A leaf nobody holds any more has no
  // .grad() anyone could read, so it is skipped.
  std::vector<Tensor> leaves;
  std::unordered_set<uint64_t> produced, seen;
  for (const TapeNode& n : nodes_)
    for (const TapeSlot& o : n.outputs) produced.insert(o.id);
  for (const TapeNode& n : nodes_)
    for (const TapeSlot& in : n.inputs) {
      if (!in.requires_grad || produced.count(in.id) || !seen.insert(in.id).second) continue;
      if (std::shared_ptr<TensorImpl> impl = in.tensor.lock()) leaves.push_back(Tensor::from_impl(std::move(impl)));
    }
  if (!produced.count(loss.impl()->id) && loss.requires_grad() && seen.insert(loss.impl()->id).second) leaves.push_back(loss);
  run(loss, Tensor(), leaves, /*into_leaf_grads=*/true);
}

std::vector<Tensor> Tape::grad(const Tensor& loss, const std::vector<Tensor>& wrt) {
  for (const Tensor& w : wrt) SG_CHECK(w.defined(), "tape.grad: a tensor in wrt is undefined");
  return run(loss, Tensor(), wrt, /*into_leaf_grads=*/false);
}

std::vector<Tensor> Tape::vjp(const Tensor& y, const Tensor& grad_y, const std::vector<Tensor>& wrt) {
  SG_CHECK(y.defined() && grad_y.defined(), "tape.vjp: y and grad_y must be defined");
  SG_CHECK(grad_y.shape() == y.shape() && grad_y.dtype() == y.dtype() && grad_y.device() == y.device(),
           "tape.vjp: grad_y " << grad_y << " must match y " << y);
  for (const Tensor& w : wrt) SG_CHECK(w.defined(), "tape.vjp: a tensor in wrt is undefined");
  return run(y, grad_y, wrt, /*into_leaf_grads=*/false);
}

std::vector<Tensor> Tape::run(const Tensor& loss, const Tensor& grad_loss, const std::vector<Tensor>& wanted,
                              bool into_leaf_grads) {
  SG_CHECK(loss.defined(), "backward: loss is undefined");
  SG_CHECK(loss.dtype() == DType::F32 || loss.dtype() == DType::F64,
           "backward: loss must be floating, got " << dtype_name(loss.dtype()));
  SG_CHECK(grad_loss.defined() || loss.numel() == 1,
           "backward: loss must be a scalar, got shape " << shape_str(loss.shape())
                                                         << " (reduce it with ops::mean or ops::sum first)");

  // Forward sweep: which tensors lead back to a wanted tensor, hence which nodes must run.
  std::unordered_set<uint64_t> leads, wanted_ids;
  for (const Tensor& w : wanted) {
    leads.insert(w.impl()->id);
    wanted_ids.insert(w.impl()->id);
  }
  std::vector<bool> active(nodes_.size(), false);
  for (size_t k = 0; k < nodes_.size(); ++k) {
    for (const TapeSlot& in : nodes_[k].inputs)
      if (leads.count(in.id)) {
        active[k] = true;
        break;
      }
    if (active[k])
      for (const TapeSlot& o : nodes_[k].outputs) leads.insert(o.id);
  }

  std::unordered_map<uint64_t, Tensor> grads;  // gradient buffers by tensor id
  grads[loss.impl()->id] =
      grad_loss.defined() ? grad_loss.clone() : Tensor::full(loss.shape(), 1.0, loss.dtype(), loss.device());

  for (size_t k = nodes_.size(); k-- > 0;) {
    if (!active[k]) continue;
    TapeNode& node = nodes_[k];
    bool any = false;
    std::vector<Tensor> grad_outputs;
    grad_outputs.reserve(node.outputs.size());
    for (const TapeSlot& o : node.outputs) {
      auto it = grads.find(o.id);
      if (it != grads.end()) {
        any = true;
        grad_outputs.push_back(it->second);
      } else {
        grad_outputs.push_back(Tensor());
      }
    }
    if (!any) continue;
    for (size_t i = 0; i < grad_outputs.size(); ++i)
      if (!grad_outputs[i].defined()) {
        const TapeSlot& o = node.outputs[i];
        grad_outputs[i] = Tensor::zeros(o.shape, o.dtype, o.device);
      }

    std::vector<Tensor*> grad_inputs(node.inputs.size(), nullptr);
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      const TapeSlot& in = node.inputs[i];
      if (!in.requires_grad || !leads.count(in.id)) continue;
      auto it = grads.find(in.id);
      if (it == grads.end()) it = grads.emplace(in.id, Tensor::zeros(in.shape, in.dtype, in.device)).first;
      grad_inputs[i] = &it->second;
    }
    node.backward(grad_outputs, grad_inputs);
    // Outputs' gradients are consumed: free them now to keep backward memory flat.
    for (const TapeSlot& o : node.outputs)
      if (!wanted_ids.count(o.id)) grads.erase(o.id);
  }

  std::vector<Tensor> result;
  result.reserve(wanted.size());
  for (const Tensor& w : wanted) {
    auto it = grads.find(w.impl()->id);
    Tensor g = it != grads.end() ? it->second : Tensor::zeros(w.shape(), w.dtype(), w.device());
    if (into_leaf_grads) {
      Tensor leaf = w;
      if (!leaf.grad().defined()) leaf.set_grad(g);
      else ops::accumulate(leaf.grad(), g);
    }
    result.push_back(g);
  }
  return result;
}

}  // namespace spikegrad
