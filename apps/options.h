// Every setting of a run, with the defaults of reference.md where the papers fix them, and the CLI/TOML
// binding. One struct serves train, eval and attack so a checkpoint can carry the config it was made with.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace CLI {
class App;
}

namespace spikegrad::app {

struct RunConfig {
  // data
  std::string dataset = "fashion-mnist";  // datasets/registry.h: fashion-mnist | mnist | cifar10 | cifar100 |
                                          // tiny-imagenet | imagenet | cifar10-dvs
  std::string data_dir;                   // empty: the dataset's default directory
  int64_t val_size = 5000;                // held out from the training set for model selection
  bool select_on_test = false;            // the released code's behaviour (pitfall 12): marked in the report
  int64_t train_subset = 0;               // 0: the whole training split; N: the first N after the split
  int64_t test_subset = 0;                // 0: the whole test split for clean accuracy
  std::string augment = "auto";           // auto (the dataset's training recipe: crop+flip for CIFAR, the JPEG
                                          // and DVS datasets' own; none for MNIST-style) | on | off
  // JPEG datasets (tiny-imagenet, imagenet; datasets/image_folder.h JpegDatasetOptions) — apps/data_options.h
  int64_t image_size = 0;        // output side; 0: the dataset's (ImageNet 224, Tiny-ImageNet 64)
  int64_t resize_size = 0;       // evaluation Resize before the center crop; 0: round(S*256/224) (Tiny: S)
  std::string jpeg_recipe;       // resized-crop | pad-crop; empty: the dataset's
  double crop_scale_min = 0.08;  // RandomResizedCrop's smallest area fraction
  int64_t crop_padding = 4;      // pad-crop: RandomCrop padding
  bool dct_scaling = true;       // decode at a reduced DCT scale where the transform shrinks anyway
  bool skip_corrupt = false;     // validate every JPEG when listing; leave unreadable ones out (counted)
  std::string val_labels;        // ImageNet flat val/: its label file; empty: <data-dir>/val_labels.txt
  // CIFAR10-DVS (datasets/cifar10_dvs.h DvsOptions); T is --T
  std::string dvs_split = "random-9000-1000";  // random-9000-1000 | per-class-700-300 | per-class-100-test | per-class-90-10
  uint64_t dvs_split_seed = 42;
  std::string dvs_split_by = "number";  // number | time
  int64_t dvs_size = 48;                // frames resized 128x128 -> SxS (area)
  std::string dvs_frame_norm = "max";   // max (TET/TMI, values in [0,1]) | none (event counts)
  std::string dvs_cache_dir;            // empty: <data-dir>/frames_cache
  int64_t decode_threads = -1;          // loader worker threads; -1 auto, 0 all hardware threads
  // model
  std::string model = "small_cnn";
  int64_t time_steps = 4;
  std::string neuron = "lif";      // a registered neuron (engine/neuron_registry.h): lif | if | plif | ...
  std::map<std::string, double> neuron_opt;  // the neuron's own options given (--neuron-opt key=value)
  double threshold = 1.0;
  double decay = 0.5;
  std::string reset = "hard";      // hard | soft
  bool detach_reset = false;
  std::string surrogate = "triangle";  // triangle | sigmoid | atan | rectangle
  double surrogate_alpha = 1.0;
  bool memory_savers = true;  // fused BN + neuron, spike inputs kept as bytes (ModelConfig); same results
  std::string conv = "cudnn";  // CUDA convolution: cudnn | ours (the hand-written implicit GEMM)
  bool tf32 = false;           // TF32 tensor cores in the convolutions (--conv ours only)
  std::string cpu_conv = "auto";  // CPU convolution: auto (zero-skipping kernels for sparse inputs) | dense
  // input encoding and residual-model switches (ModelConfig; apps/encoding_options.h)
  std::string encoding = "direct";  // direct | phase | poisson (models/encoding.h)
  std::string stem_pool = "max";    // residual models: max | avg
  std::string sew_connect = "add";  // SEW-ResNet: add | and | iand
  int64_t resnet_width = 64;        // Spiking-/SEW-ResNet: stage widths w, 2w, 4w, 8w (64: the standard nets)
  int64_t width_div = 1;            // VGG/AlexNet/small_cnn: every conv and hidden width divided by N (rounded up)
  // loss
  std::string loss = "ce";   // ce (on the mean over T of the logits) | tet
  double tet_lambda = 0.05;  // TMI's λ
  double tet_phi = 1.0;
  double mi_lambda = 0.05;   // TMI term weight; 0 turns it off
  std::string mi_x;          // tap names; empty: the model's defaults (first / last conv spiking layer)
  std::string mi_z;
  std::string mi_estimator = "kde";  // kde (TMI) | hist (AIMIE-style plug-in histogram) | mine; losses/losses.h
  int64_t mi_hist_bins = 16;         // hist: bins over the rate range (engine/ops_hist_mi.h says why 16)
  std::string mi_reduce = "avg";     // tap -> rate: avg (mean over C,H,W; TMI) | max (channel max; the ablation)
  std::string mi_taps = "deep";      // deep: Z = last conv spiking layer | shallow: Z' = the second spiking layer
  int64_t mine_hidden = 64;          // mine: width of the statistics network's two hidden layers (losses/mine.h)
  int64_t mine_pool = 4;             // mine: each tap's time-averaged map pooled to at most pool x pool per channel
  double mine_ema = 0.01;            // mine: rate of the moving average of E[e^T] in the corrected gradient
  double mine_lr = 1e-4;             // mine: Adam learning rate of the statistics network
  double entropy_weight = 0.0;  // output-entropy regulariser (the paper's -H baseline)
  double entropy_sign = -1.0;   // loss += sign * weight * H
  // optimisation
  std::string optimizer = "adam";  // adam | adamw | sgd
  double lr = 1e-3;
  double momentum = 0.9;
  double weight_decay = 0.0;
  bool nesterov = false;
  std::string schedule = "cosine";  // cosine | step | none  (stepped per epoch)
  int64_t step_size = 30;
  double gamma = 0.1;
  double grad_clip = 0.0;  // 0: off; else max global L2 norm
  // SNN-RAT adversarial training (reference.md §4.4): each minibatch crafted with BN in eval mode, the loss
  // on the adversarial batch (adv_mix > 0: (1-m)·L(adv) + m·L(clean)); then the orthogonal retraction
  // after every optimizer step (models/retraction.h).
  std::string adv = "none";      // none | fgsm | pgd
  std::string adv_eps = "2/255";
  std::string adv_alpha = "1/255";
  int64_t adv_steps = 2;
  bool adv_random_start = true;  // PGD only
  double adv_mix = 0.0;          // weight of the clean batch's loss; 0: adversarial only (RAT)
  double retraction_beta = -1;   // -1: auto (5e-4 with --adv, 0 without; resolve_training_defaults); 0: off
  int64_t epochs = 2;
  int64_t batch = 64;
  uint64_t seed = 1000;
  // run
  std::string device = "auto";  // cpu | cuda | auto
  std::string runs_dir = "runs";
  std::string name;             // run folder name; empty: <model>-<dataset>-<loss>
  bool resume = false;
  bool progress = true;         // progress bar on a terminal
  // data-parallel training under mpirun (README "Scaling out"); --batch is the global batch
  bool sync_bn = false;              // batch-norm statistics over all ranks' examples (N ranks = one process)
  double collective_timeout = 300;   // seconds a rank waits for the others in a collective before failing
  // evaluation (train's final report, eval, attack)
  std::string checkpoint;       // eval/attack: the checkpoint to load
  int64_t attack_subset = 1000; // examples attacked (the first N of the test split); 0: all
  std::string eps = "4/255";    // attack: a comma-separated sweep; others: one value
  std::string alpha = "eps/4";  // PGD/BIM step: a fraction, or eps/N (TMI's 1/255 at 4/255)
  int64_t steps = 4;
  std::string gn_std;           // Gaussian noise std; empty: eps
  std::string attack_grad = "bptt";  // bptt | rga | ann-relu | ann-qcfs
  std::string attack_domain = "pixels";  // pixels | spikes (the encoded spike tensor; attacks/attack.h AttackDomain)
  std::string save_logits;      // eval: per-example logits (safetensors)
  std::string save_adv;         // attack: adversarial inputs (safetensors)
  std::string attacks = "fgsm,pgd,bim,gn";  // apps/attack_sweep.h: also apgd-ce apgd-t fab-t square autoattack cw; none
  std::string attack_loss = "ce";           // FGSM/PGD/BIM: ce | cw (the CW margin)
  int64_t apgd_iterations = 100;            // AutoAttack's standard budgets
  int64_t fab_iterations = 100;
  int64_t square_queries = 5000;
  int64_t target_classes = 9;               // APGD-T / FAB-T: classes ranked 2..target_classes+1
  double cw_c = 1.0;                        // CW-L2 (torchattacks' defaults)
  double cw_kappa = 0.0;
  int64_t cw_steps = 50;
  double cw_lr = 0.01;
  bool obfuscation_checks = true;
  std::string source_checkpoint;            // attack: transfer attacks crafted on this checkpoint's model           // apps/obfuscation.h: the checklist under every attack table
  int64_t eval_batch = 256;
  int64_t track_robustness = 0;  // train: per epoch, test MI(X;Z) and FGSM robust acc on the first N test examples; 0 off

  nlohmann::json to_json() const;
  static RunConfig from_json(const nlohmann::json& j);  // unknown keys are an error
};

// Which settings a command line set, on the command line or in its --config file, as RunConfig JSON keys
// ("lr", "time_steps"). A caller that fills a whole RunConfig in code means every field (all = true).
struct GivenSettings {
  bool all = true;
  std::set<std::string> keys;
  bool has(const std::string& key) const { return all || keys.count(key) > 0; }
};

// The flag a RunConfig key is set by, for messages: "time_steps" -> "--time-steps".
std::string flag_for_key(const std::string& key);

// Issue 16, defect 5. `--resume` continues the run as recorded in its checkpoint. What may differ:
//   --epochs   to extend the run (>= the recorded count; not given: the recorded count, never the default);
//   --device, --progress, --data-dir, --runs-dir, --name, --decode-threads, --dvs-cache-dir, --val-labels,
//   --collective-timeout
//              where and how it runs, not what it computes (the number of ranks, too: see train.h)
//              (not given: as recorded, except --runs-dir and --name, which found the folder).
// Any other setting that was given (asked.has) and differs from the recorded one is an error naming every
// such flag with both values; a setting not given takes the recorded value. Returns the config to run.
RunConfig config_for_resume(const RunConfig& recorded, const RunConfig& asked, const GivenSettings& given,
                            const std::string& checkpoint_path);

// Registers the options shared by all subcommands, or only those of one.
void add_common_options(CLI::App* app, RunConfig& c);
void add_train_options(CLI::App* app, RunConfig& c);
void add_eval_options(CLI::App* app, RunConfig& c, bool sweep);

// "4/255", "0.0157", "8/255" -> value; error names the flag.
double parse_fraction(const std::string& text, const std::string& flag);
std::vector<double> parse_fraction_list(const std::string& text, const std::string& flag);
// --neuron-opt items "key=value" (already split at commas) -> key -> value; a bad item or a key given twice
// is an error naming --neuron-opt. The keys are checked against the neuron by check_neuron_settings.
std::map<std::string, double> parse_neuron_opt(const std::vector<std::string>& items);
// --neuron names a registered neuron, --neuron-opt holds only its options, in range, and --threshold, --reset,
// --decay are at their defaults where the neuron does not take them. Errors name the flag and the neuron.
void check_neuron_settings(const RunConfig& c);
// Checks values that CLI11's validators do not cover (cross-field rules), check_neuron_settings included.
void validate(const RunConfig& c);
// Cross-flag rules of adversarial training (--adv-mix needs --adv), checked on a run's final config: on
// --resume only after the recorded config is adopted (the command line alone may leave --adv out).
void check_adversarial_training(const RunConfig& c);
// The defaults that depend on other flags, made explicit in the config (so config.json and checkpoints
// record what ran): --retraction-beta auto -> 5e-4 with --adv fgsm|pgd, 0 without.
void resolve_training_defaults(RunConfig& c);
// An output flag naming the same file as an input (--save-adv or --save-logits onto --checkpoint or the
// --config file) would destroy that input: an error naming both flags. Paths are compared weakly-canonical
// (symbolic links and ".." resolved), and as files where both exist (hard links).
void check_outputs_differ_from_inputs(const RunConfig& c, const std::string& config_file = "");

// Issue 16, defect 4: everything that can be checked without the data is checked before anything runs, so a
// mistake never costs a training run (and its report).
// The attack flags, each against the range the attacks accept: every --eps of the list and --gn-std in
// [0, 1] (pixel units of [0,1] images), --alpha finite and > 0, --steps in [1, 2^31-1], --attack-grad
// bptt | rga | ann-relu | ann-qcfs. Errors name the flag and the value.
void check_attack_settings(const RunConfig& c);
// An output file (--save-adv, --save-logits): not a directory or other non-regular file, in an existing
// folder where a file can be created (probed by creating and removing a temporary file there, as the
// atomic writer will). Errors name the flag and the path.
void check_output_file(const std::string& path, const std::string& flag);
// train: validate(c), the attack settings of the final report, every output path (--save-adv /
// --save-logits when set, --runs-dir not a file), outputs differing from inputs. Call it first in
// run_train (and again on the config a --resume adopts). The check that needs the data (train, validation
// and test splits with one image shape) is check_splits_match (apps/evaluation.h), right after loading.
void validate_before_training(const RunConfig& c, const std::string& config_file = "");
// eval/attack: the same checks on this invocation's flags, before the checkpoint or the data are read.
// A --dataset (empty: the checkpoint's) that differs from the checkpoint's is refused by
// config_for_checkpoint (apps/commands.h).
void validate_before_evaluation(const RunConfig& flags, const std::string& config_file = "");

}  // namespace spikegrad::app
