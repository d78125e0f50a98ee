#include "apps/train.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>

#include "apps/checkpoint.h"
#include "apps/evaluation.h"
#include "apps/interrupt.h"
#include "apps/metrics.h"
#include "apps/progress.h"
#include "apps/run_folder.h"
#include "apps/setup.h"
#include "attacks/attack.h"
#include "datasets/loader.h"
#include "losses/losses.h"
#include "models/retraction.h"

namespace spikegrad::app {

namespace fs = std::filesystem;

namespace {

LossConfig loss_config(const RunConfig& c) {
  LossConfig l;
  l.base = c.loss == "tet" ? LossBase::tet : LossBase::ce;
  l.tet_lambda = c.tet_lambda;
  l.tet_phi = c.tet_phi;
  l.mi_lambda = c.mi_lambda;
  l.mi_x = c.mi_x;
  l.mi_z = c.mi_z;
  l.entropy_weight = c.entropy_weight;
  l.entropy_sign = c.entropy_sign;
  l.report_mi = true;  // metrics.csv always carries MI, whether or not it is in the loss
  return l;
}

std::string default_name(const RunConfig& c) {
  return c.model + "-" + c.dataset + "-" + c.loss + (c.mi_lambda > 0 ? "-tmi" : "") + (c.adv != "none" ? "-rat" : "");
}

bool holds_results(const fs::path& dir, std::string* which) {
  for (const char* f : {"metrics.csv", "best.safetensors", "report.md"})
    if (fs::exists(dir / f)) {
      *which = f;
      return true;
    }
  return false;
}

// What a step reports, read with one transfer from the device (to_cpu): on CUDA the step waits for the
// device once, not once per loss part plus once for the predictions.
struct StepValues {
  std::vector<std::pair<std::string, double>> parts;  // LossParts::named() order: ("loss", total) first
  Tensor predictions;                                 // int32 (B) on the CPU
  double loss() const { return parts.front().second; }
};
StepValues read_step(const LossParts& p, const Tensor& predictions) {
  const auto named = p.named();
  std::vector<Tensor> tensors{predictions};
  for (const auto& [name, t] : named) tensors.push_back(t);
  const std::vector<Tensor> host = to_cpu(tensors);
  StepValues v;
  v.predictions = host[0];
  for (size_t i = 0; i < named.size(); ++i) v.parts.push_back({named[i].first, host[i + 1].item()});
  return v;
}

struct EpochSums {
  std::vector<std::pair<std::string, double>> parts;
  int64_t correct = 0, seen = 0;
  void add(const StepValues& v, int64_t batch) {
    if (parts.empty())
      for (const auto& [name, value] : v.parts) parts.push_back({name, 0.0});
    for (size_t i = 0; i < v.parts.size(); ++i) parts[i].second += v.parts[i].second * double(batch);
  }
};

// A mid-epoch last.safetensors (written when training is interrupted) carries, besides the loader
// position the checkpoint format already holds (LoaderState.next_batch), the epoch's running sums, so the
// resumed epoch's metrics row equals an uninterrupted run's. They ride in their own metadata key beside
// "spikegrad", tied to the loader position they belong to.
constexpr const char* kEpochInProgressKey = "spikegrad_epoch_in_progress";

std::string epoch_sums_json(const EpochSums& s, const LoaderState& at) {
  nlohmann::json j;
  j["epoch"] = at.epoch;
  j["next_batch"] = at.next_batch;
  j["correct"] = s.correct;
  j["seen"] = s.seen;
  j["parts"] = nlohmann::json::array();
  for (const auto& [name, total] : s.parts) j["parts"].push_back({name, total});  // doubles round-trip exactly
  return j.dump();
}

EpochSums read_epoch_sums(const Checkpoint& ck) {
  const LoaderState& at = ck.progress.loader;
  const auto it = ck.file.metadata.find(kEpochInProgressKey);
  SG_CHECK(it != ck.file.metadata.end(), ck.path << ": a mid-epoch checkpoint (epoch " << at.epoch + 1 << ", step "
                                                 << at.next_batch << ") without the epoch's running sums ('"
                                                 << kEpochInProgressKey << "' metadata)");
  EpochSums s;
  try {
    const nlohmann::json j = nlohmann::json::parse(it->second);
    SG_CHECK(j.at("epoch").get<int64_t>() == at.epoch && j.at("next_batch").get<int64_t>() == at.next_batch,
             "the running sums are of epoch " << j.at("epoch").get<int64_t>() + 1 << " step "
                                              << j.at("next_batch").get<int64_t>() << ", the loader is at epoch "
                                              << at.epoch + 1 << " step " << at.next_batch);
    s.correct = j.at("correct").get<int64_t>();
    s.seen = j.at("seen").get<int64_t>();
    for (const auto& p : j.at("parts")) s.parts.push_back({p.at(0).get<std::string>(), p.at(1).get<double>()});
    SG_CHECK(s.seen > 0 && s.correct >= 0 && s.correct <= s.seen && !s.parts.empty(),
             "implausible running sums (correct " << s.correct << ", seen " << s.seen << ")");
  } catch (const Error& e) {
    SG_FAIL(ck.path << ": bad '" << kEpochInProgressKey << "' metadata: " << e.what());
  } catch (const std::exception& e) {
    SG_FAIL(ck.path << ": bad '" << kEpochInProgressKey << "' metadata: " << e.what());
  }
  return s;
}

}  // namespace

// The gradient is BPTT, as the released code's `-atk_m bptt`.
std::optional<AttackConfig> training_attack(const RunConfig& c) {
  if (c.adv == "none") return std::nullopt;
  AttackConfig a;
  a.kind = parse_attack_kind(c.adv);
  a.eps = parse_fraction(c.adv_eps, "--adv-eps");
  a.alpha = parse_fraction(c.adv_alpha, "--adv-alpha");
  a.steps = int(c.adv_steps);
  a.random_start = c.adv_random_start;
  a.grad = AttackGrad::bptt;
  return a;
}

StepLoss training_step_loss(Tape& tape, Model& model, const Tensor& images, const Tensor& labels, const LossConfig& lcfg,
                            const std::optional<AttackConfig>& adv, double mix, Generator& gen) {
  auto loss_on = [&](const Tensor& x) {
    ForwardResult out = model.forward(tape, x, taps_needed(lcfg));
    // The taps die with `out` here: holding X's spikes through backward would cost memory.
    return StepLoss{compute_loss(tape, out.logits, labels, out.taps, lcfg), out.logits};
  };
  if (!adv) return loss_on(images);
  StepLoss s = loss_on(attack(model, images, labels, *adv, gen));
  if (mix == 0) return s;
  const StepLoss clean = loss_on(images);
  auto blend = [&](const Tensor& a, const Tensor& c) {
    if (!a.defined()) return a;
    return ops::add(tape, ops::scale(tape, a, 1.0 - mix), ops::scale(tape, c, mix));
  };
  s.parts.total = blend(s.parts.total, clean.parts.total);
  s.parts.base = blend(s.parts.base, clean.parts.base);
  s.parts.mi = blend(s.parts.mi, clean.parts.mi);
  s.parts.entropy = blend(s.parts.entropy, clean.parts.entropy);
  return s;
}

void (*train_commit_hook)(const char* point, int64_t epoch) = nullptr;
void (*train_step_hook)(int64_t epoch, int64_t steps_done) = nullptr;

std::string run_train(RunConfig c, const GivenSettings& given) {
  // SIGINT/SIGTERM for this call's life: the flag is polled after each step (see Interrupted).
  const InterruptGuard interrupts;
  // Every flag and output path before anything is written or loaded: a bad --eps or --save-adv must not
  // surface only after training, with the report lost.
  validate_before_training(c);
  if (!c.resume) check_adversarial_training(c);
  resolve_training_defaults(c);
  if (c.name.empty()) c.name = default_name(c);
  validate_run_name(c.name);
  const fs::path dir = fs::path(c.runs_dir) / c.name;
  const fs::path last_path = dir / "last.safetensors", best_path = dir / "best.safetensors";

  // Resume continues the recorded config (config_for_resume: --epochs may extend it; where and how it runs
  // may change; any other differing flag is an error naming it).
  Checkpoint resume_from;
  const bool resuming = c.resume;
  // A new run goes only into a folder without a run or results (checked under the lock, so a run still
  // writing the folder is reported as that, with its pid).
  auto check_folder_is_new = [&] {
    SG_CHECK(!fs::exists(last_path), "run folder " << dir.string()
                                                   << " already holds a run; use --resume to continue it or --name for a new one");
    std::string result;
    SG_CHECK(!holds_results(dir, &result), "run folder " << dir.string() << " already holds results (" << result
                                                         << ") but no last.safetensors to resume from; use --name for a "
                                                            "new run, or remove the folder");
  };
  if (resuming) SG_CHECK(fs::exists(last_path), "--resume: no checkpoint at " << last_path.string());
  // The folder is this process's until it returns or dies: a second run with the same name stops here.
  fs::create_directories(dir);
  const RunLock lock(dir);
  if (!resuming) check_folder_is_new();  // before anything in the folder is touched
  remove_stale_temporaries(dir);
  if (resuming) {
    SG_CHECK(fs::exists(last_path), "--resume: no checkpoint at " << last_path.string());
    resume_from = read_checkpoint(last_path.string());
    c = config_for_resume(resume_from.config, c, given, last_path.string());
    const int64_t done = resume_from.progress.epochs_done;
    // A finished run is not extended behind the user's back (the default --epochs used to do that); one
    // whose report was never written (stopped during it) writes it now.
    SG_CHECK(done < c.epochs || !fs::exists(dir / "report.md"),
             "--resume: the run in " << dir.string() << " is finished (epoch " << done << " of " << c.epochs
                                     << ") and its report.md is written; to train it further give --epochs N with N > "
                                     << done);
    validate_before_training(c);  // a config adopted from an older checkpoint meets today's checks too
    check_adversarial_training(c);
    resolve_training_defaults(c);
  }

  const Device device = resolve_device(c.device);
  Data data = load_data(c, /*need_train=*/true);
  // Before the first step: train, validation and test images must share one shape and class count.
  check_splits_match(data.train, data.validation, data.test,
                     c.dataset + (c.data_dir.empty() ? std::string() : " in " + c.data_dir));
  std::unique_ptr<Model> model = build_model(c, data.train, device);
  std::unique_ptr<Optimizer> optimizer = build_optimizer(c, *model);
  std::unique_ptr<LrSchedule> schedule = build_schedule(c);
  const LossConfig lcfg = loss_config(c);
  const std::optional<AttackConfig> adv = training_attack(c);

  LoaderOptions lo = LoaderOptions::training(data.train, c.batch, c.seed);
  lo.decode_threads = c.decode_threads;
  if (data.train.lazy()) {
    // JPEG and event datasets transform in their source: auto/on is its training recipe, off its evaluation one.
    if (c.augment == "off") lo.sample_mode = SampleMode::Evaluate;
  } else {
    if (c.augment == "on") lo.augmentation = Augmentation{4, true};  // the CIFAR recipe: crop (pad 4) + flip
    if (c.augment == "off") lo.augmentation = Augmentation{};
  }
  Loader loader(data.train, lo);
  SG_CHECK(loader.batches_per_epoch() > 0, "--batch " << c.batch << " is larger than the training set ("
                                                      << data.train.size() << " examples)");
  Generator gen(c.seed);
  TrainProgress progress;
  MetricsFile metrics((dir / "metrics.csv").string());
  // A mid-epoch checkpoint (an interrupted run): the first epoch continues at this step with these sums.
  int64_t resume_step = 0;
  EpochSums resume_sums;
  if (resuming) {
    restore_model(*model, resume_from);
    restore_optimizer(*optimizer, resume_from);
    progress = resume_from.progress;
    gen.set_state(progress.generator_seed, progress.generator_offset);
    if (progress.loader.next_batch > 0) {
      SG_CHECK(progress.loader.epoch == progress.epochs_done && progress.loader.next_batch < loader.batches_per_epoch(),
               last_path.string() << ": the loader position (epoch " << progress.loader.epoch + 1 << ", step "
                                  << progress.loader.next_batch << " of " << loader.batches_per_epoch()
                                  << ") does not continue the " << progress.epochs_done << " epochs done");
      resume_sums = read_epoch_sums(resume_from);
      resume_step = progress.loader.next_batch;
    }
    metrics.truncate_to(progress.epochs_done, last_path.string());
    resume_from.file = SafetensorsFile();  // the copies are in the model and optimizer now
    if (resume_step > 0)
      std::fprintf(stderr, "resuming %s at epoch %lld step %lld\n", dir.string().c_str(),
                   (long long)progress.epochs_done + 1, (long long)resume_step);
    else
      std::fprintf(stderr, "resuming %s after epoch %lld\n", dir.string().c_str(), (long long)progress.epochs_done);
  }

  // What a stop message names as the checkpoint that survives it.
  auto last_good = [&] { return fs::exists(last_path) ? last_path.string() : std::string("(none yet)"); };

  // On a signal: last.safetensors at this point (`steps` of the 0-based `epoch` done, with the epoch's
  // running sums), then Interrupted. The commit's own checkpoint is the same state when steps == 0.
  auto stop_interrupted = [&](int64_t epoch, int64_t steps, const EpochSums& sums, int64_t shown_epoch,
                              int64_t shown_step) {
    check_model_state(*model, "interrupted at epoch " + std::to_string(shown_epoch) + " step " +
                                  std::to_string(shown_step) + "; nothing saved (the last good checkpoint is " +
                                  last_good() + ")");
    TrainProgress at = progress;  // epochs_done == epoch here
    at.generator_seed = gen.seed();
    at.generator_offset = gen.offset();
    at.loader = {loader.state().seed, epoch, steps};
    std::map<std::string, std::string> extra;  // mid-epoch: the running sums ride beside "spikegrad"
    if (steps > 0) extra[kEpochInProgressKey] = epoch_sums_json(sums, at.loader);
    save_checkpoint(last_path.string(), *model, optimizer.get(), c, at, extra);
    throw Interrupted("interrupted at epoch " + std::to_string(shown_epoch) + " step " + std::to_string(shown_step) +
                      "; continue with --resume");
  };
  write_file_atomically(dir / "config.json", c.to_json().dump(2) + "\n");
  // A new run's folder holds last.safetensors (the state before epoch 1) before anything else of it is
  // written: a kill inside epoch 1's commit (best.safetensors or the metrics row written, last.safetensors
  // not yet) then leaves a run --resume continues, where it used to leave results that neither --resume
  // nor a new run would touch.
  if (!resuming) {
    progress.generator_seed = gen.seed();
    progress.generator_offset = gen.offset();
    progress.loader = {c.seed, 0, 0};
    save_checkpoint(last_path.string(), *model, optimizer.get(), c, progress);
  }
  std::fprintf(stderr, "%s on %s: %lld parameters, %lld train / %lld validation / %lld test examples, device %s\n",
               model->name().c_str(), c.dataset.c_str(), (long long)model->num_parameters(), (long long)data.train.size(),
               (long long)data.validation.size(), (long long)data.test.size(), device_name(device));

  for (int64_t epoch = progress.epochs_done; epoch < c.epochs; ++epoch) {
    if (schedule) optimizer->set_lr(schedule->lr(epoch));
    model->train(true);
    EpochSums sums;
    int64_t step = 0;
    if (resume_step > 0) {
      loader.restore({loader.state().seed, epoch, resume_step});
      sums = resume_sums;
      step = resume_step;
      resume_step = 0;
    } else {
      loader.set_epoch(epoch);
    }
    if (interrupts.received()) stop_interrupted(epoch, step, sums, epoch + 1, step);
    allocator(device).reset_peak();
    const size_t live_before = allocator(device).stats().current_bytes;
    Progress bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(c.epochs), loader.batches_per_epoch(),
                 c.progress);
    Batch batch;
    while (loader.next(batch)) {
      const Tensor images = batch.images.to(device), labels = batch.labels.to(device);
      Tape tape;
      const StepLoss out = training_step_loss(tape, *model, images, labels, lcfg, adv, c.adv_mix, gen);
      const LossParts& parts = out.parts;
      // Everything of the step that does not depend on the loss value is queued before the loss is read:
      // on CUDA the one wait for the device then overlaps backward instead of sitting between forward and
      // backward. A non-finite loss still stops the run before the optimizer touches the parameters.
      tape.backward(parts.total);
      Tensor predictions;
      {
        NoGradGuard ng;
        Tape none;
        predictions = ops::argmax(ops::mean_time(none, out.logits));
      }
      const StepValues values = read_step(parts, predictions);
      const double loss = values.loss();
      if (!std::isfinite(loss))
        SG_FAIL("training stopped: the loss is " << loss << " at epoch " << epoch + 1 << ", step " << step + 1
                                                 << "; the last good checkpoint is "
                                                 << last_good());
      if (c.grad_clip > 0) clip_grad_norm(optimizer->params(), c.grad_clip);
      optimizer->step();
      optimizer->zero_grad();
      // SNN-RAT's retraction, after every step; its row subsets draw from `gen` (models/retraction.h).
      if (c.retraction_beta > 0) orthogonal_retraction(*model, c.retraction_beta, gen);
      const int64_t b = batch.labels.numel();
      sums.add(values, b);
      sums.correct += count_matches(values.predictions, batch.labels);  // both on the CPU: nothing is copied back
      sums.seen += b;
      ++step;
      char status[96];
      std::snprintf(status, sizeof status, "loss %.4f  acc %.2f%%", loss, 100.0 * double(sums.correct) / double(sums.seen));
      bar.update(step, sums.seen, status);
      if (train_step_hook) train_step_hook(epoch, step);
      // After the epoch's last step the epoch is committed first (the check at the next epoch's start, or
      // after the loop, then stops).
      if (interrupts.received() && step < loader.batches_per_epoch()) stop_interrupted(epoch, step, sums, epoch + 1, step);
    }
    // Finite parameters and buffers (and BN variances >= 0) before anything of this epoch is saved: a
    // diverged run (e.g. --lr 1e30) stops here naming the tensor, and the last good checkpoint stays.
    check_model_state(*model, "training stopped after epoch " + std::to_string(epoch + 1) +
                                  " (the last good checkpoint is " +
                                  last_good() + ")");
    EpochMetrics m;
    m.epoch = epoch + 1;
    m.lr = optimizer->lr();
    for (auto& [name, total] : sums.parts) m.loss_parts.push_back({name, total / double(sums.seen)});
    m.train_accuracy = 100.0 * double(sums.correct) / double(sums.seen);
    m.seconds = bar.seconds();
    m.train_peak_mib = double(allocator(device).stats().peak_bytes - live_before) / double(1 << 20);
    m.images_per_second = double(sums.seen) / m.seconds;
    m.val_accuracy = data.validation.size() > 0 ? clean_accuracy(*model, data.validation, c.eval_batch) : -1.0;
    m.test_accuracy = clean_accuracy(*model, data.test, c.eval_batch);
    const double selection = c.select_on_test ? m.test_accuracy : m.val_accuracy;

    progress.epochs_done = epoch + 1;
    progress.generator_seed = gen.seed();
    progress.generator_offset = gen.offset();
    progress.loader = {c.seed, epoch + 1, 0};
    if (selection > progress.best_accuracy) {
      progress.best_accuracy = selection;
      progress.best_epoch = epoch + 1;
      save_checkpoint(best_path.string(), *model, optimizer.get(), c, progress);
      if (train_commit_hook) train_commit_hook("between best.safetensors and the metrics row", epoch + 1);
    }
    // The epoch's commit: the row first (fsynced), then last.safetensors. A kill between the two leaves the
    // checkpoint at the previous epoch and one row too many, which --resume drops before redoing the epoch,
    // so every epoch's row is there exactly once.
    metrics.append(m);
    if (train_commit_hook) train_commit_hook("between metrics row and last.safetensors", epoch + 1);
    save_checkpoint(last_path.string(), *model, optimizer.get(), c, progress);
    std::fprintf(stderr, "epoch %lld: train %.2f%%  %s %.2f%%  test %.2f%%  (%.1f s, %.0f img/s)\n", (long long)m.epoch,
                 m.train_accuracy, c.select_on_test ? "select-on-test" : "val", c.select_on_test ? m.test_accuracy : m.val_accuracy,
                 m.test_accuracy, m.seconds, m.images_per_second);
  }

  if (interrupts.received() && c.epochs > 0)
    stop_interrupted(c.epochs, 0, EpochSums(), c.epochs, loader.batches_per_epoch());

  // The report: the best checkpoint, clean and attacked. Training is committed by now, so a signal here
  // only ends the report (after the batch in flight); --resume on the finished run writes it.
  Checkpoint best = read_checkpoint(best_path.string());
  restore_model(*model, best);
  std::string report;
  try {
    report = report_text(*model, c, data.test, best.progress, &interrupts);
  } catch (const Interrupted& e) {
    throw Interrupted(std::string(e.what()) + "; training is complete (" + last_path.string() + ", " +
                      best_path.string() + "); write the report with --resume");
  }
  write_file_atomically(dir / "report.md", report);  // checked like every run-folder write
  std::printf("%s", report.c_str());
  return dir.string();
}

}  // namespace spikegrad::app
