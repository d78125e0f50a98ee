#include "apps/encoding_options.h"

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "apps/attack_sweep.h"
#include "engine/check.h"
#include "models/encoding.h"

namespace spikegrad::app {

void add_encoding_options(CLI::App* app, RunConfig& c) {
  app->add_option("--encoding", c.encoding,
                  "input encoding: direct (the normalised image at every step) | phase (bit-planes of the 8-bit pixel, "
                  "most significant first; no normalisation) | poisson (spike with probability = pixel)")
      ->check(CLI::IsMember(encoding_names()))
      ->capture_default_str();
  app->add_option("--stem-pool", c.stem_pool, "residual models: the pool after the stem, max | avg")
      ->check(CLI::IsMember({"max", "avg"}))
      ->capture_default_str();
  app->add_option("--sew-connect", c.sew_connect, "SEW-ResNet: how a block joins its skip path, add | and | iand")
      ->check(CLI::IsMember({"add", "and", "iand"}))
      ->capture_default_str();
}

void add_attack_domain_option(CLI::App* app, RunConfig& c) {
  app->add_option("--attack-domain", c.attack_domain,
                  "what the attacks perturb: pixels (the images) | spikes (the encoded (B,T,C,H,W) spikes of a phase or "
                  "poisson model, eps in spike units)")
      ->check(CLI::IsMember({"pixels", "spikes"}))
      ->capture_default_str();
}

bool spike_domain(const RunConfig& c) { return c.attack_domain == "spikes"; }

void check_encoding_settings(const RunConfig& c) {
  SG_CHECK(c.encoding == "direct" || c.encoding == "phase" || c.encoding == "poisson",
           "--encoding must be direct, phase or poisson, got '" << c.encoding << "'");
  SG_CHECK(c.stem_pool == "max" || c.stem_pool == "avg", "--stem-pool must be max or avg, got '" << c.stem_pool << "'");
  SG_CHECK(c.sew_connect == "add" || c.sew_connect == "and" || c.sew_connect == "iand",
           "--sew-connect must be add, and or iand, got '" << c.sew_connect << "'");
  SG_CHECK(c.attack_domain == "pixels" || c.attack_domain == "spikes",
           "--attack-domain must be pixels or spikes, got '" << c.attack_domain << "'");
  const bool encoded = c.encoding != "direct";
  // Checked here too (build_model checks the data's layout) so that the mistake costs no data loading.
  SG_CHECK(!(encoded && c.dataset == "cifar10-dvs"), "--encoding " << c.encoding
                                                                   << ": cifar10-dvs examples are event frames, already "
                                                                      "spikes over T; use --encoding direct");
  SG_CHECK(encoded || !spike_domain(c),
           "--attack-domain spikes needs a spike encoder (--encoding phase or poisson); with --encoding direct the "
           "network's input is the analog image: use --attack-domain pixels");
  if (!encoded) return;
  SG_CHECK(c.attack_grad != "ann-relu" && c.attack_grad != "ann-qcfs",
           "--attack-grad " << c.attack_grad << " runs the weights as a one-step ANN on the analog image, but --encoding "
                            << c.encoding << " feeds T steps of spikes; use --attack-grad bptt or rga");
  if (spike_domain(c)) return;
  // Pixels through a spike encoder: only what needs no gradient may run.
  std::vector<std::string> parts;
  std::string attacks;
  for (const std::string& name : parse_attack_list(c.attacks))
    if (name != "gn" && name != "square") attacks += (attacks.empty() ? "--attacks " : ",") + name;
  if (!attacks.empty()) parts.push_back(attacks);
  if (c.obfuscation_checks) parts.push_back("the obfuscation checks");
  if (c.adv != "none") parts.push_back("--adv " + c.adv);
  std::string needs_gradient;
  for (size_t i = 0; i < parts.size(); ++i)
    needs_gradient += (i == 0 ? "" : i + 1 == parts.size() ? " and " : ", ") + parts[i];
  SG_CHECK(needs_gradient.empty(),
           "--attack-domain pixels with --encoding "
               << c.encoding << ": the encoder's spikes are piecewise constant in the pixels, so the pixel gradient is "
                                "identically zero and "
               << needs_gradient
               << " would report fake robustness; use --attack-domain spikes (attack the encoded spikes, as the released "
                  "code does), or only gradient-free attacks in pixels (--attacks gn,square --no-obfuscation-checks)");
}

}  // namespace spikegrad::app
