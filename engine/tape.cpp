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

void Tape::backward(const Tensor& loss, const GradFinalFn& on_grad_final) {
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
  run(loss, Tensor(), leaves, /*into_leaf_grads=*/true, on_grad_final);
}

std::vector<Tensor> Tape::grad(const Tensor& loss, const std::vector<Tensor>& wrt) {
  for (const Tensor& w : wrt) SG_CHECK(w.defined(), "tape.grad: a tensor in wrt is undefined");
  return run(loss, Tensor(), wrt, /*into_leaf_grads=*/false);
}

std::vector<Tensor> Tape::vjp(const Tensor& y, const Tensor& gy, const std::vector<Tensor>& wrt) {
  SG_CHECK(y.defined() && gy.defined(), "tape.vjp: y and gy must be defined");
  SG_CHECK(gy.shape() == y.shape() && gy.dtype() == y.dtype() && gy.device() == y.device(),
           "tape.vjp: gy " << gy << " must match y " << y);
  for (const Tensor& w : wrt) SG_CHECK(w.defined(), "tape.vjp: a tensor in wrt is undefined");
  return run(y, gy, wrt, /*into_leaf_grads=*/false);
}

Tape::Plan Tape::plan(const std::vector<Tensor>& wanted) const {
  // Forward sweep: which tensors lead back to a wanted tensor, hence which nodes must run.
  Plan p;
  for (const Tensor& w : wanted) {
    p.leads.insert(w.impl()->id);
    p.wanted_ids.insert(w.impl()->id);
  }
  p.active.assign(nodes_.size(), false);
  for (size_t k = 0; k < nodes_.size(); ++k) {
    for (const TapeSlot& in : nodes_[k].inputs)
      if (p.leads.count(in.id)) {
        p.active[k] = true;
        break;
      }
    if (p.active[k])
      for (const TapeSlot& o : nodes_[k].outputs) p.leads.insert(o.id);
  }
  // The reverse walk reaches the lowest-index reader of a wanted tensor last: after it, nothing adds to it.
  for (size_t k = nodes_.size(); k-- > 0;) {
    if (!p.active[k]) continue;
    for (const TapeSlot& in : nodes_[k].inputs)
      if (in.requires_grad && p.wanted_ids.count(in.id)) p.final_after[in.id] = k;
  }
  return p;
}

void Tape::run_node(size_t k, const Plan& plan, GradBuffers& grads) {
  TapeNode& node = nodes_[k];
  bool any = false;
  std::vector<Tensor> gy;
  gy.reserve(node.outputs.size());
  for (const TapeSlot& o : node.outputs) {
    auto it = grads.find(o.id);
    if (it != grads.end()) {
      any = true;
      gy.push_back(it->second);
    } else {
      gy.push_back(Tensor());
    }
  }
  if (!any) return;
  for (size_t i = 0; i < gy.size(); ++i)
    if (!gy[i].defined()) {
      const TapeSlot& o = node.outputs[i];
      gy[i] = Tensor::zeros(o.shape, o.dtype, o.device);
    }

  std::vector<Tensor*> gx(node.inputs.size(), nullptr);
  for (size_t i = 0; i < node.inputs.size(); ++i) {
    const TapeSlot& in = node.inputs[i];
    if (!in.requires_grad || !plan.leads.count(in.id)) continue;
    auto it = grads.find(in.id);
    if (it == grads.end()) it = grads.emplace(in.id, Tensor::zeros(in.shape, in.dtype, in.device)).first;
    gx[i] = &it->second;
  }
  node.backward(gy, gx);
  // Outputs' gradients are consumed: free them now to keep backward memory flat.
  for (const TapeSlot& o : node.outputs)
    if (!plan.wanted_ids.count(o.id)) grads.erase(o.id);
}

std::vector<Tensor> Tape::run(const Tensor& loss, const Tensor& gloss, const std::vector<Tensor>& wanted,
                              bool into_leaf_grads, const GradFinalFn& on_grad_final) {
  SG_CHECK(loss.defined(), "backward: loss is undefined");
  SG_CHECK(loss.dtype() == DType::F32 || loss.dtype() == DType::F64,
           "backward: loss must be floating, got " << dtype_name(loss.dtype()));
  SG_CHECK(gloss.defined() || loss.numel() == 1,
           "backward: loss must be a scalar, got shape " << shape_str(loss.shape())
                                                         << " (reduce it with ops::mean or ops::sum first)");
  const Plan p = plan(wanted);
  GradBuffers grads;
  grads[loss.impl()->id] =
      gloss.defined() ? gloss.clone() : Tensor::full(loss.shape(), 1.0, loss.dtype(), loss.device());

  // A wanted tensor's gradient, once final: into its .grad() when asked (then the hook), and as the result.
  std::unordered_map<uint64_t, Tensor> results;
  auto deliver = [&](const Tensor& w) {
    auto it = grads.find(w.impl()->id);
    Tensor g = it != grads.end() ? it->second : Tensor::zeros(w.shape(), w.dtype(), w.device());
    if (into_leaf_grads) {
      Tensor leaf = w;
      if (!leaf.grad().defined()) leaf.set_grad(g);
      else ops::accumulate(leaf.grad(), g);
      if (on_grad_final) on_grad_final(leaf);
    }
    results.emplace(w.impl()->id, g);
  };
  // The wanted tensors each node finalises (a tensor may be wanted twice: it is delivered once).
  std::unordered_map<size_t, std::vector<const Tensor*>> final_at;
  for (const Tensor& w : wanted) {
    const auto it = p.final_after.find(w.impl()->id);
    if (it != p.final_after.end()) final_at[it->second].push_back(&w);
  }

  for (size_t k = nodes_.size(); k-- > 0;) {
    if (!p.active[k]) continue;
    run_node(k, p, grads);
    const auto done = final_at.find(k);
    if (done == final_at.end()) continue;
    for (const Tensor* w : done->second)
      if (!results.count(w->impl()->id)) deliver(*w);
  }
  // Wanted tensors no running node reads (the loss itself, or tensors it does not depend on).
  for (const Tensor& w : wanted)
    if (!results.count(w.impl()->id)) deliver(w);

  std::vector<Tensor> result;
  result.reserve(wanted.size());
  for (const Tensor& w : wanted) result.push_back(results.at(w.impl()->id));
  return result;
}

}  // namespace spikegrad
