// `spikegrad analyze`: its flags, the command, and the report (markdown on stdout and in analysis.md,
// layers.csv, summary.csv). The computation is apps/analyze.cpp; the CSV columns are documented in README.md
// ("spikegrad analyze").
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "apps/analyze.h"
#include "apps/attack_sweep.h"
#include "apps/checkpoint.h"
#include "apps/commands.h"
#include "apps/encoding_options.h"
#include "apps/run_folder.h"
#include "apps/setup.h"
#include "apps/tasa.h"

namespace spikegrad::app {
namespace {

namespace fs = std::filesystem;

// A number for the report: NaN (not applicable / not measured) is "-" in markdown and an empty CSV cell.
std::string number(double v, bool csv, int digits = 4) {
  if (std::isnan(v)) return csv ? "" : "-";
  std::ostringstream o;
  o.precision(csv ? 6 : digits);
  o << v;
  return o.str();
}
std::string per_step(const std::vector<double>& values, bool csv) {
  std::string out;
  for (size_t t = 0; t < values.size(); ++t) out += (t ? (csv ? ";" : "/") : "") + number(values[t], csv, 2);
  return out.empty() && !csv ? "-" : out;
}
std::string shape_without_batch(const Shape& s) {
  std::string out;
  for (size_t d = 1; d < s.size(); ++d) out += (d > 1 ? "x" : "") + std::to_string(s[d]);
  return out.empty() ? "-" : out;
}
// RFC 4180: quote a cell holding a comma, a quote or a line break.
std::string cell(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}
std::string row(const std::vector<std::string>& cells) {
  std::string out;
  for (size_t i = 0; i < cells.size(); ++i) out += (i ? "," : "") + cell(cells[i]);
  return out + "\n";
}

}  // namespace

void add_analyze_options(CLI::App* app, RunConfig& c, AnalyzeOptions& o) {
  app->add_option("--checkpoint", c.checkpoint, "checkpoint file")->required();
  app->add_option("--batches", o.batches, "analyse the first N test batches of --eval-batch examples (mean over them)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  c.eps = "8/255";
  app->add_option(
         "--eps", c.eps,
         "L-inf radius of R's FGSM and random-sign points, in the attack domain's units ([0,1] pixels or spikes)")
      ->capture_default_str();
  app->add_option("--bn-mode", o.bn_mode,
                  "eval (BN running statistics) | train (batch statistics, as the released code attacks; the running "
                  "statistics are restored after every batch)")
      ->check(CLI::IsMember({"eval", "train"}))
      ->capture_default_str();
  app->add_option("--out", o.out, "output folder (default: <the checkpoint's folder>/analysis)");
  add_attack_domain_option(app, c);
  // The encoding rules (check_encoding_settings) judge a run by its attacks: analyze's one is FGSM (R's
  // adversarial point), with no obfuscation checklist.
  c.attacks = "fgsm";
  c.obfuscation_checks = false;
  app->add_option("--attack-grad,--grad", c.attack_grad,
                  "bptt only: the diagnostics measure the surrogate-BPTT gradients (rga / ann-* replace them)")
      ->capture_default_str();
  app->add_flag("--tasa", o.tasa,
                "also measure TASA (apps/tasa.h) per spiking layer on the same clean examples and on attacked ones; "
                "writes tasa.csv and a table in analysis.md");
  app->add_option("--tasa-attack", o.tasa_attack, "the attack of --tasa, at --eps: fgsm | pgd | bim")
      ->check(CLI::IsMember({"fgsm", "pgd", "bim"}))
      ->capture_default_str();
  app->add_option("--alpha", c.alpha, "--tasa's PGD/BIM step size: a fraction (1/255) or eps/N")->capture_default_str();
  app->add_option("--steps", c.steps, "--tasa's PGD/BIM steps")->check(CLI::Range(1, 1 << 30))->capture_default_str();
}

void run_analyze(const RunConfig& flags, const AnalyzeOptions& options) {
  SG_CHECK(!flags.checkpoint.empty(), "--checkpoint: required (a best.safetensors or last.safetensors of a run)");
  SG_CHECK(flags.attack_grad == "bptt", "analyze: --attack-grad " << flags.attack_grad
                                                                  << " is not supported: the diagnostics measure the "
                                                                     "surrogate-BPTT gradients (use bptt)");
  SG_CHECK(options.bn_mode == "eval" || options.bn_mode == "train",
           "--bn-mode: expected eval or train, got '" << options.bn_mode << "'");
  SG_CHECK(options.batches >= 1, "--batches: must be >= 1, got " << options.batches);
  const double eps = parse_fraction(flags.eps, "--eps");
  SG_CHECK(eps >= 0 && eps <= 1, "--eps: analyze takes one radius in [0, 1], got " << flags.eps);
  RunConfig checked = flags;  // the encoding rules judge the run by the attacks analyze runs: FGSM (R), --tasa's
  checked.attacks = options.tasa && options.tasa_attack != "fgsm" ? "fgsm," + options.tasa_attack : "fgsm";
  validate_before_evaluation(checked);
  const Checkpoint ckpt = read_checkpoint(flags.checkpoint);
  const RunConfig c = config_for_checkpoint(flags, ckpt.config);
  const Data data = load_data(c, /*need_train=*/false);
  std::unique_ptr<Model> model = build_model(c, data.test, resolve_device(c.device));
  restore_model(*model, ckpt);
  const fs::path out =
      options.out.empty() ? fs::path(flags.checkpoint).parent_path() / "analysis" : fs::path(options.out);
  fs::create_directories(out);

  AnalysisContext ctx;
  ctx.model = c.model;
  ctx.checkpoint = flags.checkpoint;
  ctx.encoding = c.encoding;
  ctx.neuron = c.neuron;
  ctx.surrogate = c.surrogate + " (alpha " + number(c.surrogate_alpha, false) + ")";
  ctx.eps_text = flags.eps;
  ctx.settings.bn_mode = options.bn_mode;
  ctx.settings.eps = eps;
  ctx.settings.domain = parse_attack_domain(c.attack_domain);
  ctx.settings.random_signs = options.random_signs;
  ctx.settings.seed = c.seed;
  ctx.settings.batches = options.batches;
  ctx.settings.batch_size = c.eval_batch;
  const Analysis a = analyze_model(*model, data.test, ctx.settings);
  std::string text = analysis_markdown(a, ctx);
  if (options.tasa) {
    RunConfig tasa_flags = c;
    tasa_flags.attacks = options.tasa_attack;
    const SweepAttack tasa_attack = report_attacks(tasa_flags, eps).front();
    const TasaResult tasa = measure_tasa(*model, data.test, tasa_attack.basic, options.batches, c.eval_batch);
    text += "\n" + tasa_markdown(tasa, tasa_attack.name + ", " + describe(tasa_attack));
    write_file_atomically(out / "tasa.csv", tasa_csv(tasa));
  }
  std::printf("%s", text.c_str());
  write_file_atomically(out / "analysis.md", text);
  write_file_atomically(out / "layers.csv", layers_csv(a));
  write_file_atomically(out / "summary.csv", summary_csv(a, ctx));
  std::printf("wrote %s/{analysis.md,layers.csv,summary.csv%s}\n", out.string().c_str(), options.tasa ? ",tasa.csv" : "");
}

std::string analysis_markdown(const Analysis& a, const AnalysisContext& ctx) {
  const AnalysisSettings& s = ctx.settings;
  std::ostringstream o;
  o << "# Gradient-sparsity analysis: " << ctx.model << "\n\n"
    << "- checkpoint: " << ctx.checkpoint << "\n"
    << "- " << a.batches << " test batch(es), " << a.examples << " examples; every number is the mean over the batches "
    << "of its per-batch value\n"
    << "- loss: cross entropy on the mean-over-T logits (the attack loss), one backward by surrogate BPTT\n"
    << "- BN mode: " << s.bn_mode
    << (s.bn_mode == "train"
            ? " (batch statistics, as the released code attacks; running statistics restored after every batch)"
            : " (running statistics)")
    << "\n- neuron: " << ctx.neuron << ", surrogate " << ctx.surrogate << "\n"
    << "- encoder: " << ctx.encoding << "; attack domain of R and FGSM: " << attack_domain_name(s.domain)
    << (s.domain == AttackDomain::spikes ? " (the encoded (B,T,C,H,W) spikes, ε in spike units)"
                                         : " ((B,C,H,W) images)")
    << ", clamped to [0,1]\n\n"
    << "## Layers\n\n"
    << "z = fraction of exactly-zero gradient entries; in/out = d loss / d(the layer's input / output); per t = z_in "
       "at "
       "each time step; s_eff = (||g||_1/||g||_2)^2/D of g_in; z_W = zeros of d loss / dW, struct = entries of conv "
       "taps "
       "that only ever see padding, non-struct = zeros among the others; rate = mean spike; MI = KDE-MI (bits) of the "
       "layer's firing-rate sequence with the first neuron layer's.\n\n"
    << "| layer | kind | shape | z_in | z_out | z_in per t | ‖g_in‖ | s_eff | z_W | z_W struct | z_W non-struct | rate "
       "| MI |\n"
    << "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const LayerAnalysis& l : a.layers)
    o << "| " << l.name << " | " << l.kind << " | " << shape_without_batch(l.shape) << " | " << number(l.z_in, false)
      << " | " << number(l.z_out, false) << " | " << per_step(l.z_in_t, false) << " | " << number(l.norm_in, false)
      << " | " << number(l.s_eff_in, false) << " | " << number(l.z_w, false) << " | " << number(l.z_w_structural, false)
      << " | " << number(l.z_w_nonstructural, false) << " | " << number(l.rate, false) << " | "
      << number(l.mi_bits, false) << " |\n";
  if (a.layers.empty()) o << "| (no layer trace) | | | | | | | | | | | | |\n";
  const InputAnalysis& in = a.input;
  o << "\n## Network input\n\n"
    << "- encoded input (the `input` record): z " << number(in.encoded_z, false) << ", per t "
    << per_step(in.encoded_z_t, false) << ", ‖g‖ " << number(in.encoded_norm, false) << ", s_eff "
    << number(in.encoded_s_eff, false) << ", |g| > 1e-6·max " << number(in.encoded_above[0], false)
    << ", |g| > 1e-3·max " << number(in.encoded_above[1], false) << "\n"
    << "- attacked input (" << attack_domain_name(s.domain) << ", d loss / d x): z " << number(in.domain_z, false)
    << ", ‖g‖ " << number(in.domain_norm, false) << ", s_eff " << number(in.domain_s_eff, false) << ", D "
    << number(in.domain_dim, false) << ", ‖g‖₀ " << number(in.domain_nonzeros, false) << "\n"
    << "- R = [ℓ(x+ε·sign g) − ℓ(x)] / mean_k[ℓ(x+ε·s_k) − ℓ(x)] = " << number(in.ratio, false)
    << " (mean |·| in the denominator: " << number(in.abs_ratio, false) << "); ε = " << ctx.eps_text
    << ", K = " << s.random_signs << " random sign vectors (Philox, seed " << s.seed
    << " + batch index), batch-mean loss\n"
    << "- first-order bounds on R: √(2·‖g‖₀) = " << number(in.bound_l0, false)
    << ", √(D·s_eff) = " << number(in.bound_s_eff, false) << "\n"
    << "- accuracy with BN eval: clean " << number(a.clean_accuracy, false) << "%, FGSM at ε = " << ctx.eps_text
    << " (the x+ε·sign g point of R) " << number(a.fgsm_accuracy, false) << "%\n"
    << "- mean firing rate over every neuron layer: " << number(a.mean_rate, false) << "\n\n"
    << "> R near 1 together with high robustness is a sign of gradient masking (gradient_sparsity.md §2.1, §7 item 6): "
       "the gradient direction is then no better than a random one. Check with non-gradient and transfer attacks.\n";
  for (const std::string& note : a.notes) o << "\nNote: " << note << "\n";
  return o.str();
}

std::string layers_csv(const Analysis& a) {
  std::string out = row({"layer", "kind", "shape", "z_in", "z_out", "z_in_t", "z_out_t", "grad_in_norm", "s_eff_in",
                         "frac_in_above_1e-6", "frac_in_above_1e-3", "weight", "z_w", "z_w_structural",
                         "z_w_nonstructural", "rate", "mi_bits_first"});
  for (const LayerAnalysis& l : a.layers)
    out += row({l.name, l.kind, shape_without_batch(l.shape), number(l.z_in, true), number(l.z_out, true),
                per_step(l.z_in_t, true), per_step(l.z_out_t, true), number(l.norm_in, true), number(l.s_eff_in, true),
                number(l.above_in[0], true), number(l.above_in[1], true), l.weight, number(l.z_w, true),
                number(l.z_w_structural, true), number(l.z_w_nonstructural, true), number(l.rate, true),
                number(l.mi_bits, true)});
  return out;
}

std::string summary_csv(const Analysis& a, const AnalysisContext& ctx) {
  const InputAnalysis& in = a.input;
  std::string out =
      row({"model",      "checkpoint", "batches",     "examples",   "bn_mode",    "encoding",     "attack_domain",
           "neuron",     "surrogate",  "eps",         "attack",     "clean_acc",  "robust_acc",   "sparsity",
           "mean_rate",  "input_z",    "input_s_eff", "input_norm", "domain_z",   "domain_s_eff", "domain_norm",
           "domain_dim", "R",          "R_abs",       "bound_l0",   "bound_s_eff"});
  out += row({ctx.model,
              ctx.checkpoint,
              std::to_string(a.batches),
              std::to_string(a.examples),
              ctx.settings.bn_mode,
              ctx.encoding,
              attack_domain_name(ctx.settings.domain),
              ctx.neuron,
              ctx.surrogate,
              ctx.eps_text,
              "fgsm",
              number(a.clean_accuracy, true),
              number(a.fgsm_accuracy, true),
              number(std::isnan(a.mean_rate) ? a.mean_rate : 1.0 - a.mean_rate, true),
              number(a.mean_rate, true),
              number(in.encoded_z, true),
              number(in.encoded_s_eff, true),
              number(in.encoded_norm, true),
              number(in.domain_z, true),
              number(in.domain_s_eff, true),
              number(in.domain_norm, true),
              number(in.domain_dim, true),
              number(in.ratio, true),
              number(in.abs_ratio, true),
              number(in.bound_l0, true),
              number(in.bound_s_eff, true)});
  return out;
}

}  // namespace spikegrad::app
