#include "apps/train.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "apps/checkpoint.h"
#include "apps/distributed_run.h"
#include "apps/epoch_sums.h"
#include "apps/evaluation.h"
#include "apps/interrupt.h"
#include "apps/metrics.h"
#include "apps/progress.h"
#include "apps/robustness_tracking.h"
#include "apps/run_folder.h"
#include "apps/setup.h"
#include "attacks/attack.h"
#include "datasets/loader.h"
#include "engine/distributed.h"
#include "engine/distributed_gradients.h"
#include "losses/losses.h"
#include "losses/mine.h"
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
  l.mi_estimator = c.mi_estimator == "hist"   ? MiEstimator::hist
                   : c.mi_estimator == "mine" ? MiEstimator::mine
                                              : MiEstimator::kde;
  l.mi_hist.bins = int(c.mi_hist_bins);
  l.mi_reduce = c.mi_reduce == "max" ? ops::RateReduce::ChannelMax : ops::RateReduce::Mean;
  l.mi_taps = c.mi_taps == "shallow" ? MiTaps::shallow : MiTaps::deep;
  l.entropy_weight = c.entropy_weight;
  l.entropy_sign = c.entropy_sign;
  l.report_mi = true;  // metrics.csv always carries MI, whether or not it is in the loss
  return l;
}

std::string default_name(const RunConfig& c) {
  return c.model + "-" + c.dataset + "-" + c.loss + (c.mi_lambda > 0 ? "-tmi" : "") + (c.adv != "none" ? "-rat" : "");
}

bool holds_results(const fs::path& dir, std::string* which) {
  for (const char* f : {"metrics.csv", "best.safetensors", "results.csv", "report.md"})
    if (fs::exists(dir / f)) {
      *which = f;
      return true;
    }
  return false;
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
  a.domain = parse_attack_domain(c.attack_domain);
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
  StepLoss s = loss_on(attack(model, attack_input(model, images, adv->domain), labels, *adv, gen));
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

namespace {

// One `spikegrad train` invocation, in the order it runs: open() the run folder (and the checkpoint a
// --resume continues), build() the data, model and optimizer, restore() or start the run's files, then
// train() epoch by epoch, each committed by commit_epoch(), and the report. Under mpirun every rank runs
// this; rank 0 alone touches the run folder (apps/distributed_run.h).
class Trainer {
 public:
  Trainer(RunConfig c, const GivenSettings& given, const InterruptGuard& interrupts, dist::Communicator& comm)
      : c_(std::move(c)), given_(given), interrupts_(interrupts), comm_(comm) {}

  std::string run() {
    open();
    build();
    restore_or_start();
    train();
    return report();
  }

 private:
  bool rank0() const { return comm_.rank() == 0; }
  // What a stop message names as the checkpoint that survives it.
  std::string last_good() const { return fs::exists(last_path_) ? last_path_.string() : std::string("(none yet)"); }

  // Every flag and output path before anything is written or loaded (a bad --eps or --save-adv must not
  // surface only after training, with the report lost); the folder locked and checked by rank 0; with
  // --resume the recorded config adopted (config_for_resume: --epochs may extend it; where and how it runs
  // may change; any other differing flag is an error naming it).
  void open() {
    validate_before_training(c_);
    if (!c_.resume) check_adversarial_training(c_);
    resolve_training_defaults(c_);
    if (c_.name.empty()) c_.name = default_name(c_);
    validate_run_name(c_.name);
    comm_.set_timeout(c_.collective_timeout);
    check_distributed_settings(c_, comm_);
    dir_ = fs::path(c_.runs_dir) / c_.name;
    last_path_ = dir_ / "last.safetensors";
    best_path_ = dir_ / "best.safetensors";
    resuming_ = c_.resume;
    on_rank0_then_agree(comm_, "checking the run folder", [&] { lock_and_check_folder(); });
    if (resuming_) {
      SG_CHECK(fs::exists(last_path_), "--resume: no checkpoint at " << last_path_.string());
      resume_from_ = read_checkpoint(last_path_.string());
      c_ = config_for_resume(resume_from_.config, c_, given_, last_path_.string());
      const int64_t done = resume_from_.progress.epochs_done;
      // A finished run is not extended behind the user's back (the default --epochs used to do that); one
      // whose report was never written (stopped during it) writes it now.
      SG_CHECK(done < c_.epochs || !fs::exists(dir_ / "report.md"),
               "--resume: the run in " << dir_.string() << " is finished (epoch " << done << " of " << c_.epochs
                                       << ") and its report.md is written; to train it further give --epochs N with N > "
                                       << done);
      validate_before_training(c_);  // a config adopted from an older checkpoint meets today's checks too
      check_adversarial_training(c_);
      resolve_training_defaults(c_);
      comm_.set_timeout(c_.collective_timeout);
      check_distributed_settings(c_, comm_);  // the recorded --batch with this run's N
    }
    check_ranks_agree(c_, resuming_ ? &resume_from_ : nullptr, comm_);
  }

  // Rank 0: the folder is this process's until it returns or dies (a second run with the same name stops
  // here); a new run goes only into a folder without a run or results (checked under the lock, so a run still
  // writing the folder is reported as that, with its pid).
  void lock_and_check_folder() {
    if (resuming_) SG_CHECK(fs::exists(last_path_), "--resume: no checkpoint at " << last_path_.string());
    fs::create_directories(dir_);
    lock_ = std::make_unique<RunLock>(dir_);
    if (!resuming_) {
      SG_CHECK(!fs::exists(last_path_), "run folder " << dir_.string()
                                                      << " already holds a run; use --resume to continue it or --name for a new one");
      std::string result;
      SG_CHECK(!holds_results(dir_, &result), "run folder " << dir_.string() << " already holds results (" << result
                                                            << ") but no last.safetensors to resume from; use --name for a "
                                                               "new run, or remove the folder");
    }
    remove_stale_temporaries(dir_);
  }

  void build() {
    device_ = resolve_device(c_.device);
    prepare_rank_device(device_ == Device::CUDA, comm_);
    share_cores_between_ranks(comm_);
    data_ = load_data(c_, /*need_train=*/true);
    // Before the first step: train, validation and test images must share one shape and class count.
    check_splits_match(data_.train, data_.validation, data_.test,
                       c_.dataset + (c_.data_dir.empty() ? std::string() : " in " + c_.data_dir));
    model_ = build_model(c_, data_.train, device_);
    optimizer_ = build_optimizer(c_, *model_);
    schedule_ = build_schedule(c_);
    lcfg_ = loss_config(c_);
    if (lcfg_.mi_estimator == MiEstimator::mine) {
      // Each rank would train its own statistics network on its shard: refused rather than silently diverging.
      SG_CHECK(!comm_.distributed(), "--mi-estimator mine: not supported with several ranks (the statistics "
                                     "network's updates are not averaged over them)");
      mine_ = std::make_unique<MineEstimator>(
          MineOptions{c_.mine_hidden, int(c_.mine_pool), c_.mine_ema, c_.mine_lr, /*seed=*/c_.seed}, device_);
      lcfg_.mine = mine_.get();
      lcfg_.mine_permutations = &gen_;  // the run's generator: its state is in every checkpoint
    }
    adv_ = training_attack(c_);
    if (comm_.distributed()) {
      gradients_ = std::make_unique<dist::GradientAverager>(comm_, optimizer_->params());
      if (c_.sync_bn) {
        bn_sum_ = std::make_unique<dist::BatchNormSum>(comm_);
        model_->set_cross_replica(bn_sum_.get());
      }
    }

    LoaderOptions lo = LoaderOptions::training(data_.train, c_.batch, c_.seed);
    lo.decode_threads = decode_threads_per_rank(c_.decode_threads, data_.train.lazy(), comm_);
    lo.shard_rank = comm_.rank();
    lo.shard_count = comm_.size();
    if (data_.train.lazy()) {
      // JPEG and event datasets transform in their source: auto/on is its training recipe, off its evaluation one.
      if (c_.augment == "off") lo.sample_mode = SampleMode::Evaluate;
    } else {
      if (c_.augment == "on") lo.augmentation = Augmentation{4, true};  // the CIFAR recipe: crop (pad 4) + flip
      if (c_.augment == "off") lo.augmentation = Augmentation{};
    }
    loader_ = std::make_unique<Loader>(data_.train, lo);
    SG_CHECK(loader_->batches_per_epoch() > 0, "--batch " << c_.batch << " is larger than the training set ("
                                                          << data_.train.size() << " examples)");
    gen_ = Generator(c_.seed);
    if (rank0()) metrics_ = std::make_unique<MetricsFile>((dir_ / "metrics.csv").string());
  }

  void restore_or_start() {
    if (resuming_) {
      restore_model(*model_, resume_from_);
      restore_optimizer(*optimizer_, resume_from_);
      if (mine_) restore_mine(*mine_, resume_from_);
      progress_ = resume_from_.progress;
      gen_.set_state(progress_.generator_seed, progress_.generator_offset);
      if (progress_.loader.next_batch > 0) {
        SG_CHECK(progress_.loader.epoch == progress_.epochs_done &&
                     progress_.loader.next_batch < loader_->batches_per_epoch(),
                 last_path_.string() << ": the loader position (epoch " << progress_.loader.epoch + 1 << ", step "
                                     << progress_.loader.next_batch << " of " << loader_->batches_per_epoch()
                                     << ") does not continue the " << progress_.epochs_done << " epochs done");
        resume_sums_ = read_epoch_sums(resume_from_);
        resume_step_ = progress_.loader.next_batch;
      }
      if (rank0()) metrics_->truncate_to(progress_.epochs_done, last_path_.string());
      resume_from_.file = SafetensorsFile();  // the copies are in the model and optimizer now
      if (rank0() && resume_step_ > 0)
        std::fprintf(stderr, "resuming %s at epoch %lld step %lld\n", dir_.string().c_str(),
                     (long long)progress_.epochs_done + 1, (long long)resume_step_);
      else if (rank0())
        std::fprintf(stderr, "resuming %s after epoch %lld\n", dir_.string().c_str(), (long long)progress_.epochs_done);
    }
    if (rank0()) {
      write_file_atomically(dir_ / "config.json", c_.to_json().dump(2) + "\n");
      // A new run's folder holds last.safetensors (the state before epoch 1) before anything else of it is
      // written: a kill inside epoch 1's commit (best.safetensors or the metrics row written, last.safetensors
      // not yet) then leaves a run --resume continues, where it used to leave results that neither --resume
      // nor a new run would touch.
      if (!resuming_) {
        progress_.generator_seed = gen_.seed();
        progress_.generator_offset = gen_.offset();
        progress_.loader = {c_.seed, 0, 0};
        save_checkpoint(last_path_.string(), *model_, optimizer_.get(), c_, progress_, {}, mine_.get());
      }
      std::fprintf(stderr, "%s on %s: %lld parameters, %lld train / %lld validation / %lld test examples, device %s\n",
                   model_->name().c_str(), c_.dataset.c_str(), (long long)model_->num_parameters(),
                   (long long)data_.train.size(), (long long)data_.validation.size(), (long long)data_.test.size(),
                   device_name(device_));
      if (comm_.distributed())
        std::fprintf(stderr, "%d ranks, %lld examples each of every batch of %lld, %s batch norm, %lld gradient buckets\n",
                     comm_.size(), (long long)loader_->shard_size(), (long long)c_.batch,
                     c_.sync_bn ? "synchronised (--sync-bn)" : "per-rank", (long long)gradients_->num_buckets());
    }
    if (!resuming_) {  // every rank's progress as rank 0 saved it
      progress_.generator_seed = gen_.seed();
      progress_.generator_offset = gen_.offset();
      progress_.loader = {c_.seed, 0, 0};
    }
  }

  void train() {
    for (int64_t epoch = progress_.epochs_done; epoch < c_.epochs; ++epoch) {
      if (schedule_) optimizer_->set_lr(schedule_->lr(epoch));
      model_->train(true);
      EpochSums sums;
      int64_t step = 0;
      if (resume_step_ > 0) {
        loader_->restore({loader_->state().seed, epoch, resume_step_});
        sums = resume_sums_;
        step = resume_step_;
        resume_step_ = 0;
      } else {
        loader_->set_epoch(epoch);
      }
      if (any_rank(interrupts_.received() != 0, "the interrupt check", comm_))
        stop_interrupted(epoch, step, sums, epoch + 1, step);
      allocator(device_).reset_peak();
      const size_t live_before = allocator(device_).stats().current_bytes;
      Progress bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(c_.epochs),
                   loader_->batches_per_epoch(), c_.progress && rank0());
      Batch batch;
      while (loader_->next(batch)) {
        bool interrupted = interrupts_.received() != 0;
        const StepTotals totals = train_step(batch, epoch, step, interrupted);
        sums.add(totals);
        ++step;
        char status[96];
        std::snprintf(status, sizeof status, "loss %.4f  acc %.2f%%", totals.mean_loss(),
                      100.0 * double(sums.correct) / double(sums.seen));
        bar.update(step, sums.seen, status);
        if (train_step_hook) train_step_hook(epoch, step);
        // After the epoch's last step the epoch is committed first (the check at the next epoch's start, or
        // after the loop, then stops).
        if (!comm_.distributed()) interrupted = interrupts_.received() != 0;
        if (interrupted && step < loader_->batches_per_epoch()) stop_interrupted(epoch, step, sums, epoch + 1, step);
      }
      const double peak_mib = double(allocator(device_).stats().peak_bytes - live_before) / double(1 << 20);
      commit_epoch(epoch, sums, bar.seconds(), peak_mib);
    }
    if (any_rank(interrupts_.received() != 0, "the interrupt check", comm_) && c_.epochs > 0)
      stop_interrupted(c_.epochs, 0, EpochSums(), c_.epochs, loader_->batches_per_epoch());
  }

  // One optimizer step on this rank's part of the batch; returns the step's totals over all ranks. With
  // several ranks the gradients are averaged over them, in buckets started during backward.
  StepTotals train_step(const Batch& batch, int64_t epoch, int64_t step, bool& interrupted) {
    const Tensor images = batch.images.to(device_), labels = batch.labels.to(device_);
    Tape tape;
    const StepLoss out = training_step_loss(tape, *model_, images, labels, lcfg_, adv_, c_.adv_mix, gen_);
    // Everything of the step that does not depend on the loss value is queued before the loss is read:
    // on CUDA the one wait for the device then overlaps backward instead of sitting between forward and
    // backward. A non-finite loss still stops the run before the optimizer touches the parameters.
    if (gradients_) {
      tape.backward(out.parts.total, [&](const Tensor& leaf) { gradients_->gradient_final(leaf); });
    } else {
      tape.backward(out.parts.total);
    }
    Tensor predictions;
    {
      NoGradGuard ng;
      Tape none;
      predictions = ops::argmax(ops::mean_time(none, out.logits));
    }
    if (gradients_) gradients_->finish();
    const StepValues values = read_step(out.parts, predictions);
    const int64_t b = batch.labels.numel();
    // Both on the CPU: nothing is copied back.
    const StepTotals totals =
        sum_over_ranks(step_totals(values, count_matches(values.predictions, batch.labels), b), interrupted, comm_);
    const double loss = comm_.distributed() ? totals.mean_loss() : values.loss();
    if (!std::isfinite(loss))
      SG_FAIL("training stopped: the loss is " << loss << " at epoch " << epoch + 1 << ", step " << step + 1
                                               << "; the last good checkpoint is " << last_good());
    if (c_.grad_clip > 0) clip_grad_norm(optimizer_->params(), c_.grad_clip);
    optimizer_->step();
    optimizer_->zero_grad();
    // MINE: the SNN stepped on the current estimate; now one statistics-network step on the same batch's
    // detached features (losses/mine.h).
    if (mine_) mine_->update();
    // SNN-RAT's retraction, after every step; its row subsets draw from `gen` (models/retraction.h).
    if (c_.retraction_beta > 0) orthogonal_retraction(*model_, c_.retraction_beta, gen_);
    return totals;
  }

  // Finite parameters and buffers (and BN variances >= 0) before anything of this epoch is saved: a diverged
  // run (e.g. --lr 1e30) stops here naming the tensor, and the last good checkpoint stays. Then rank 0
  // evaluates and commits: best.safetensors if better, the metrics row (fsynced), last.safetensors.
  void commit_epoch(int64_t epoch, const EpochSums& sums, double seconds, double peak_mib) {
    check_model_state(*model_, "training stopped after epoch " + std::to_string(epoch + 1) +
                                   " (the last good checkpoint is " + last_good() + ")");
    progress_.epochs_done = epoch + 1;
    progress_.generator_seed = gen_.seed();
    progress_.generator_offset = gen_.offset();
    progress_.loader = {c_.seed, epoch + 1, 0};
    if (!rank0()) return;
    EpochMetrics m;
    m.epoch = epoch + 1;
    m.lr = optimizer_->lr();
    for (auto& [name, total] : sums.parts) m.loss_parts.push_back({name, total / double(sums.seen)});
    m.train_accuracy = 100.0 * double(sums.correct) / double(sums.seen);
    m.seconds = seconds;
    m.train_peak_mib = peak_mib;
    m.images_per_second = double(sums.seen) / m.seconds;
    m.val_accuracy = data_.validation.size() > 0 ? clean_accuracy(*model_, data_.validation, c_.eval_batch) : -1.0;
    m.test_accuracy = clean_accuracy(*model_, data_.test, c_.eval_batch);
    if (c_.track_robustness > 0) {  // reads the model only: training continues exactly as without it
      const EpochRobustness tracked = measure_epoch_robustness(*model_, data_.test, c_);
      m.test_mi_bits = tracked.test_mi_bits;
      m.robust_accuracy = tracked.robust_accuracy;
    }
    const double selection = c_.select_on_test ? m.test_accuracy : m.val_accuracy;
    if (selection > progress_.best_accuracy) {
      progress_.best_accuracy = selection;
      progress_.best_epoch = epoch + 1;
      save_checkpoint(best_path_.string(), *model_, optimizer_.get(), c_, progress_, {}, mine_.get());
      if (train_commit_hook) train_commit_hook("between best.safetensors and the metrics row", epoch + 1);
    }
    // The epoch's commit: the row first (fsynced), then last.safetensors. A kill between the two leaves the
    // checkpoint at the previous epoch and one row too many, which --resume drops before redoing the epoch,
    // so every epoch's row is there exactly once.
    metrics_->append(m);
    if (train_commit_hook) train_commit_hook("between metrics row and last.safetensors", epoch + 1);
    save_checkpoint(last_path_.string(), *model_, optimizer_.get(), c_, progress_, {}, mine_.get());
    std::fprintf(stderr, "epoch %lld: train %.2f%%  %s %.2f%%  test %.2f%%  (%.1f s, %.0f img/s)\n", (long long)m.epoch,
                 m.train_accuracy, c_.select_on_test ? "select-on-test" : "val",
                 c_.select_on_test ? m.test_accuracy : m.val_accuracy, m.test_accuracy, m.seconds, m.images_per_second);
    if (c_.track_robustness > 0)
      std::fprintf(stderr, "  tracked on %lld test examples: MI(X;Z) %.4f bits, FGSM robust %.2f%%\n",
                   (long long)std::min<int64_t>(c_.track_robustness, data_.test.size()), m.test_mi_bits,
                   m.robust_accuracy);
  }

  // On a signal: last.safetensors at this point (`steps` of the 0-based `epoch` done, with the epoch's
  // running sums), then Interrupted. The commit's own checkpoint is the same state when steps == 0. Every
  // rank comes here after the same step; the others wait until rank 0 has saved.
  [[noreturn]] void stop_interrupted(int64_t epoch, int64_t steps, const EpochSums& sums, int64_t shown_epoch,
                                     int64_t shown_step) {
    const std::string at_text = "interrupted at epoch " + std::to_string(shown_epoch) + " step " + std::to_string(shown_step);
    on_rank0_then_agree(comm_, "saving the interrupted run", [&] {
      check_model_state(*model_, at_text + "; nothing saved (the last good checkpoint is " + last_good() + ")");
      TrainProgress at = progress_;  // epochs_done == epoch here
      at.generator_seed = gen_.seed();
      at.generator_offset = gen_.offset();
      at.loader = {loader_->state().seed, epoch, steps};
      std::map<std::string, std::string> extra;  // mid-epoch: the running sums ride beside "spikegrad"
      if (steps > 0) extra[kEpochInProgressKey] = epoch_sums_json(sums, at.loader);
      save_checkpoint(last_path_.string(), *model_, optimizer_.get(), c_, at, extra, mine_.get());
    });
    throw Interrupted(at_text + "; continue with --resume");
  }

  // The report: the best checkpoint, clean and attacked, by rank 0. Training is committed by now, so a signal
  // here only ends the report (after the batch in flight); --resume on the finished run writes it.
  std::string report() {
    if (!rank0()) return dir_.string();
    model_->set_cross_replica(nullptr);
    Checkpoint best = read_checkpoint(best_path_.string());
    restore_model(*model_, best);
    std::string report, results;
    try {
      report = report_text(*model_, c_, data_.test, best.progress, &interrupts_, &results);
    } catch (const Interrupted& e) {
      throw Interrupted(std::string(e.what()) + "; training is complete (" + last_path_.string() + ", " +
                        best_path_.string() + "); write the report with --resume");
    }
    if (comm_.distributed()) report += distributed_report_section();
    // results.csv before report.md: report.md marks the run as finished (holds_results, the --epochs check)
    write_file_atomically(dir_ / "results.csv", results);  // checked like every run-folder write
    write_file_atomically(dir_ / "report.md", report);
    std::printf("%s", report.c_str());
    return dir_.string();
  }

  std::string distributed_report_section() const {
    std::string s = "\n## Data-parallel training\n\n" + std::to_string(comm_.size()) + " ranks (mpirun), " +
                    std::to_string(loader_->shard_size()) + " examples each of every batch of " +
                    std::to_string(c_.batch) + "; batch norm " +
                    (c_.sync_bn ? "synchronised over all ranks (--sync-bn)"
                                : "statistics per rank (as PyTorch DDP without SyncBatchNorm; the running "
                                  "statistics saved are rank 0's)") +
                    "; gradients averaged over the ranks. Clean accuracy and attacks evaluated by rank 0.\n";
    if (adv_ && adv_->kind == AttackKind::pgd && adv_->random_start)
      s += "\nAdversarial training's random starts are drawn by every rank for its own examples from the run's "
           "shared generator: the same distribution as one process, not the same numbers.\n";
    return s;
  }

  RunConfig c_;
  const GivenSettings& given_;
  const InterruptGuard& interrupts_;
  dist::Communicator& comm_;
  fs::path dir_, last_path_, best_path_;
  bool resuming_ = false;
  std::unique_ptr<RunLock> lock_;  // rank 0's, for the run's life
  Checkpoint resume_from_;
  int64_t resume_step_ = 0;  // a mid-epoch checkpoint: the first epoch continues at this step with these sums
  EpochSums resume_sums_;

  Device device_ = Device::CPU;
  Data data_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Optimizer> optimizer_;
  std::unique_ptr<LrSchedule> schedule_;
  LossConfig lcfg_;
  std::unique_ptr<MineEstimator> mine_;  // --mi-estimator mine; lcfg_ points at it
  std::optional<AttackConfig> adv_;
  std::unique_ptr<dist::GradientAverager> gradients_;  // several ranks only
  std::unique_ptr<dist::BatchNormSum> bn_sum_;         // --sync-bn with several ranks
  std::unique_ptr<Loader> loader_;
  Generator gen_{0};
  TrainProgress progress_;
  std::unique_ptr<MetricsFile> metrics_;  // rank 0's
};

}  // namespace

std::string run_train(RunConfig c, const GivenSettings& given) { return run_train(std::move(c), given, dist::world()); }

std::string run_train(RunConfig c, const GivenSettings& given, dist::Communicator& ranks) {
  // SIGINT/SIGTERM for this call's life: the flag is polled after each step (see Interrupted).
  const InterruptGuard interrupts;
  Trainer trainer(std::move(c), given, interrupts, ranks);
  return trainer.run();
}

}  // namespace spikegrad::app
