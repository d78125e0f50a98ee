#include "apps/mi_options.h"

#include <cmath>

#include "apps/option_flags.h"
#include "engine/check.h"

namespace spikegrad::app {

void add_mi_estimator_options(CLI::App* app, RunConfig& c) {
  app->add_option("--mi-estimator", c.mi_estimator,
                  "I(X;Z) estimator: kde (TMI's kernel density estimate) | hist (plug-in histogram, AIMIE-style; "
                  "gradient through soft binning) | mine (MINE's Donsker-Varadhan bound on spatial features, "
                  "with a statistics network trained alongside)")
      ->check(CLI::IsMember({"kde", "hist", "mine"}))
      ->capture_default_str();
  add_integer_option<int64_t>(app, "--mi-hist-bins", c.mi_hist_bins, "hist estimator: bins over the firing-rate range",
                              2, 4096);
  add_integer_option<int64_t>(app, "--mine-hidden", c.mine_hidden, "mine: width of the statistics network's hidden layers",
                              1, 65536);
  add_integer_option<int64_t>(app, "--mine-pool", c.mine_pool,
                              "mine: each tap's time-averaged map pooled to at most N x N per channel", 1, 1024);
  add_real_option(app, "--mine-ema", c.mine_ema, "mine: moving-average rate of E[e^T] in the corrected gradient",
                  Bound::open, 0, 1);
  add_real_option(app, "--mine-lr", c.mine_lr, "mine: Adam learning rate of the statistics network", Bound::open, 0);
  app->add_option("--mi-reduce", c.mi_reduce,
                  "tap -> rate per time step: avg (mean over channels and space, TMI) | max (max over channels of "
                  "the spatial means, the paper's ablation)")
      ->check(CLI::IsMember({"avg", "max"}))
      ->capture_default_str();
  app->add_option("--mi-taps", c.mi_taps,
                  "deep: Z = the last convolutional spiking layer (TMI) | shallow: Z' = the second spiking layer "
                  "(the paper's ablation; conflicts with --mi-z)")
      ->check(CLI::IsMember({"deep", "shallow"}))
      ->capture_default_str();
}

void check_mi_settings(const RunConfig& c) {
  SG_CHECK(c.mi_estimator == "kde" || c.mi_estimator == "hist" || c.mi_estimator == "mine",
           "--mi-estimator must be kde, hist or mine, got '" << c.mi_estimator << "'");
  SG_CHECK(c.mine_hidden >= 1 && c.mine_pool >= 1, "--mine-hidden and --mine-pool must be >= 1, got "
                                                       << c.mine_hidden << " and " << c.mine_pool);
  SG_CHECK(c.mine_ema > 0 && c.mine_ema <= 1, "--mine-ema must be in (0,1], got " << c.mine_ema);
  SG_CHECK(c.mine_lr > 0 && std::isfinite(c.mine_lr), "--mine-lr must be > 0, got " << c.mine_lr);
  SG_CHECK(c.mi_hist_bins >= 2 && c.mi_hist_bins <= 4096, "--mi-hist-bins must be in [2, 4096], got " << c.mi_hist_bins);
  SG_CHECK(c.mi_reduce == "avg" || c.mi_reduce == "max", "--mi-reduce must be avg or max, got '" << c.mi_reduce << "'");
  SG_CHECK(c.mi_taps == "deep" || c.mi_taps == "shallow", "--mi-taps must be deep or shallow, got '" << c.mi_taps << "'");
  SG_CHECK(c.mi_taps == "deep" || c.mi_z.empty(),
           "--mi-taps shallow chooses Z itself (the second spiking layer); drop --mi-z '" << c.mi_z
                                                                                         << "' or use --mi-taps deep");
}

}  // namespace spikegrad::app
