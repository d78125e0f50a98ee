#include "attacks/logit_gradient.h"

#include <algorithm>
#include <numeric>

#include "attacks/attack.h"

namespace spikegrad::attack_detail {

HostBatch::HostBatch(const Tensor& images, const Tensor& labels)
    : shape(images.shape()), device(images.device()), size(images.size(0)), per_example(images.numel() / images.size(0)),
      x(images.to_vector<float>()), y(labels.to_vector<int32_t>()) {}

Tensor HostBatch::on_device(const std::vector<float>& values) const {
  return Tensor::from_vector<float>(values, shape).to(device);
}

LogitPass logit_pass(Model& model, const std::vector<float>& x, const Shape& shape, Device device,
                     const std::function<void(int64_t, const float*, int64_t, double*)>& row_grad, const char* op) {
  SG_CHECK(grad_enabled(), op << ": gradients are disabled (called inside a NoGradGuard); the attack needs d loss/d input");
  const int64_t b = shape[0];
  Tape tape;
  Tensor leaf = Tensor::from_vector<float>(x, shape).to(device);
  check_gradient_reaches_input(model, leaf, op);
  leaf.set_requires_grad(true);
  ForwardResult out = model.forward(tape, leaf, TapKeep::none());
  const Tensor z = ops::mean_time(tape, out.logits);
  LogitPass p;
  p.logits = z.to_vector<float>();
  p.classes = z.size(1);
  const int64_t k = p.classes;
  std::vector<float> gz(static_cast<size_t>(b * k));
  std::vector<double> row(static_cast<size_t>(k));
  for (int64_t i = 0; i < b; ++i) {
    std::fill(row.begin(), row.end(), 0.0);
    row_grad(i, p.logits.data() + i * k, k, row.data());
    for (int64_t j = 0; j < k; ++j) gz[size_t(i * k + j)] = float(row[size_t(j)]);
  }
  const Tensor g = tape.vjp(z, Tensor::from_vector<float>(gz, {b, k}).to(device), {leaf})[0];
  SG_CHECK(g.defined() && g.shape() == shape, op << ": the model's output does not depend on its input");
  p.grad = g.to_vector<float>();
  return p;
}

int64_t first_max(const float* z, int64_t k) { return std::max_element(z, z + k) - z; }

int64_t best_other(const float* z, int64_t k, int32_t label) {
  int64_t other = label == 0 ? 1 : 0;
  for (int64_t j = other + 1; j < k; ++j)
    if (j != label && z[j] > z[other]) other = j;
  return other;
}

std::vector<int64_t> ranked_classes(const float* z, int64_t k) {
  std::vector<int64_t> order(static_cast<size_t>(k));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [z](int64_t a, int64_t b) { return z[a] > z[b]; });
  return order;
}

std::vector<int32_t> classes_of_rank(Model& model, const Tensor& images, int rank) {
  NoGradGuard no_grad;
  Tape tape;
  const Tensor z = ops::mean_time(tape, model.forward(tape, images, TapKeep::none()).logits);
  const std::vector<float> zc = z.to_vector<float>();
  const int64_t b = z.size(0), k = z.size(1);
  SG_CHECK(rank >= 1 && rank <= k, "classes_of_rank: rank " << rank << " outside [1, " << k << "]");
  std::vector<int32_t> out(static_cast<size_t>(b));
  for (int64_t i = 0; i < b; ++i) out[size_t(i)] = int32_t(ranked_classes(zc.data() + i * k, k)[size_t(rank - 1)]);
  return out;
}

}  // namespace spikegrad::attack_detail
