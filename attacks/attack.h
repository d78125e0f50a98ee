// White-box L∞ attacks in [0,1] pixel space (reference.md §5.2): FGSM, PGD, BIM, and Gaussian noise.
//
// All attacks are untargeted and follow the reference code exactly:
//   loss  = cross_entropy(mean_t logits, labels)            (mean over the batch)
//   g     = d loss / d images, taken with tape.grad(loss, {x}): no parameter's .grad() is touched
//   FGSM  x' = clamp01(x + eps·sign(g(x)))
//   PGD   x_0 = clamp01(x + U(-eps, eps)) (random_start), then `steps` times
//         x_k ← x_k + alpha·sign(g(x_k)),  delta = clamp(x_k - x, -eps, eps),  x_k = clamp01(x + delta)
//   BIM   PGD without the random start
//   GN    x' = clamp01(x + eps·N(0,1)); eps is the noise std, so GN is NOT bounded by eps in L∞
//
// Mode handling (pitfalls 1 and 6): during an attack BN uses its running statistics (model.train(false))
// whatever mode the model was in, and the neuron's backward is set to config.grad (BPTT surrogate or RGA,
// reference.md §5.3). Both switches are restored on every exit, exceptions included (ModelModeGuard).
// Every forward starts from a fresh membrane state (models/model.h), so nothing leaks between steps.
//
// Inputs: images (B,C,H,W) float32 in [0,1] on the model's device (normalisation happens inside the model),
// labels (B) int32 on the same device. The adversarial images come back on that device, not requiring grad.
// In the spike domain (AttackDomain below) the "images" are the model's encoded (B,T,C,H,W) spikes instead:
// the same rules (clamp to [0,1], project to the ε-ball) then act on the spike tensor.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "models/model.h"

namespace spikegrad {

enum class AttackKind { fgsm, pgd, bim, gn };

// Where an attack's gradients come from (reference.md §5.3):
//   bptt      the neuron's surrogate BPTT, as in training
//   rga       the rate-gradient approximation (RGA/BPTR): the time-mean input current's factor for every step
//   ann_relu  ANN mode: the same weights run as a ReLU network for one step (models/layers.h AnnMode)
//   ann_qcfs  ANN mode with QCFS (L = 8, the neuron's threshold)
// In ANN mode the attack runs entirely on the ANN — its gradients and its logits (APGD's and FAB's choice
// of the best point, CW's early stop) — like the reference code's Act_attack; the robust accuracy reported
// is always the spiking network's on the images it returns.
enum class AttackGrad { bptt, rga, ann_relu, ann_qcfs };

// The loss FGSM/PGD/BIM ascend: ce (cross entropy, the reference) or cw, the Carlini–Wagner margin
// max_{i≠y} z_i − z_y on the mean logits (unclamped: PGD-CW), which does not saturate on confident examples.
enum class AttackLoss { ce, cw };

// Which tensor an attack perturbs (gradient_sparsity.md §4.2 and §7 decision 1):
//   pixels  the (B,C,H,W) images, which the model encodes (the default; the only domain of direct encoding)
//   spikes  the encoded (B,T,C,H,W) spikes of a phase or Poisson model (models/encoding.h), as the released
//           code attacks: ε is in spike units, so the numbers are not comparable with pixel-space ε.
// A gradient attack in pixels through a phase/Poisson encoder would see an identically zero gradient (fake
// robustness), so it is refused (check_gradient_reaches_input); gradient-free GN and Square may run there.
enum class AttackDomain { pixels, spikes };
// "pixels" | "spikes"; errors name --attack-domain.
AttackDomain parse_attack_domain(const std::string& name);
const char* attack_domain_name(AttackDomain domain);
// What an attack in `domain` perturbs: the images themselves, or encode_spike_frames(model, images), the model's
// (B,T,C,H,W) spikes (an error naming --attack-domain for a direct-encoding or event-frame model).
Tensor attack_input(const Model& model, const Tensor& images, AttackDomain domain);

struct AttackConfig {
  AttackKind kind = AttackKind::pgd;
  double eps = 4.0 / 255;    // L∞ radius in [0,1] pixel units; for GN the noise std
  double alpha = 1.0 / 255;  // PGD/BIM step size
  int steps = 4;             // PGD/BIM iterations (>= 1)
  bool random_start = true;  // PGD only (BIM never starts randomly; FGSM and GN have no start)
  AttackGrad grad = AttackGrad::bptt;  // where the attack's gradients come from
  uint64_t seed = 0;         // seeds the Generator of the attack() overload that takes none
  AttackLoss loss = AttackLoss::ce;
  AttackDomain domain = AttackDomain::pixels;  // what `images` are: pixels, or attack_input(…, spikes)'s spikes
};

// TMI's evaluation (reference.md §5.1): eps 4/255, PGD 4 steps of 1/255 with random start.
AttackConfig tmi_default(AttackKind kind = AttackKind::pgd);
// The RAT/FEEL evaluation (reference.md §5.2): eps 8/255, 7 steps of alpha 0.01 (= 2.55/255); GN std 8/255.
AttackConfig rat_preset(AttackKind kind = AttackKind::pgd);

// "fgsm" | "pgd" | "bim" | "gn"; an unknown name throws an error listing the valid ones.
AttackKind parse_attack_kind(const std::string& name);
const char* attack_kind_name(AttackKind kind);
std::vector<std::string> attack_kind_names();
// "ce" | "cw"
AttackLoss parse_attack_loss(const std::string& name);
const char* attack_loss_name(AttackLoss loss);
// "bptt" | "rga" | "ann-relu" | "ann-qcfs"
AttackGrad parse_attack_grad(const std::string& name);
const char* attack_grad_name(AttackGrad grad);
std::vector<std::string> attack_grad_names();
// Throws a spikegrad::Error naming `op` for a value outside the enum.
void check_attack_grad(AttackGrad grad, const char* op);

// The reference BIM's step count when its config says steps = 0: int(min(eps·255 + 4, 1.25·eps·255)).
// (Our AttackConfig requires steps >= 1; callers that want the reference rule compute it with this.)
int bim_default_steps(double eps);

// Throws a spikegrad::Error naming the field for a config no attack can run with.
void check_attack_config(const AttackConfig& config);

// Sets the model up for an attack and puts it back when the scope ends (also by exception): BN in eval
// mode, and, when `grad` is given, the neuron's backward mode and the ANN mode it implies. predict() uses it
// without `grad`, so it predicts with whatever network the enclosing attack set up.
class ModelModeGuard {
 public:
  ModelModeGuard(Model& model, std::optional<AttackGrad> grad);
  ~ModelModeGuard();
  ModelModeGuard(const ModelModeGuard&) = delete;
  ModelModeGuard& operator=(const ModelModeGuard&) = delete;

 private:
  Model& model_;
  bool was_training_;
  ops::SpikeBackward previous_backward_;
  std::optional<AnnMode> previous_ann_;
};

// d cross_entropy(mean_t logits, labels) / d images, in attack conditions (BN eval, neuron backward = grad),
// with the model's modes restored afterwards. Same shape and device as images. Needs grad mode on (it throws
// inside a NoGradGuard).
Tensor input_gradient(Model& model, const Tensor& images, const Tensor& labels,
                      AttackGrad grad = AttackGrad::bptt);

// The adversarial images for config. Random draws (PGD start, GN noise) come from `gen`, which advances, so
// one generator passed to every batch of a data set gives independent draws per batch.
Tensor attack(Model& model, const Tensor& images, const Tensor& labels, const AttackConfig& config, Generator& gen);
// The same with a fresh Generator(config.seed): deterministic per call.
Tensor attack(Model& model, const Tensor& images, const Tensor& labels, const AttackConfig& config);

namespace attack_detail {
// Checks images (4-D float32, every value in [0,1], NaN rejected, on the model's device) and labels
// (int32 (B), same device).
void check_attack_inputs(const Model& model, const Tensor& images, const Tensor& labels, const char* op);
void check_images_in_unit_range(const Tensor& images, const char* op);
// False for pixels (4-D x) of a phase/Poisson model: the encoder cuts the gradient (it is identically zero).
bool gradient_reaches_input(const Model& model, const Tensor& x);
// Refuses a gradient w.r.t. pixels of a phase/Poisson model (4-D x into a spike encoder): it is identically
// zero. The error names --attack-domain and --encoding and says what to use instead.
void check_gradient_reaches_input(const Model& model, const Tensor& x, const char* op);
// images must be what config.domain says: (B,T,C,H,W) spikes for the spike domain.
void check_attack_domain(const Model& model, const Tensor& images, AttackDomain domain, const char* op);
// attack() for callers that already hold clean_gradient = input_gradient(model, images, labels, config.grad)
// (evaluate_attack computes it for the zero-gradient diagnostic): FGSM, BIM and PGD without random start
// reuse it for their first step instead of running the same forward/backward again. It is the CE gradient,
// so with config.loss = cw it is not reused.
Tensor attack_with_clean_gradient(Model& model, const Tensor& images, const Tensor& labels, const AttackConfig& config,
                                  Generator& gen, const Tensor& clean_gradient);
}  // namespace attack_detail

}  // namespace spikegrad
