// main() of spikegrad_mpi_tests: joins the MPI job (mpirun -np 2, ctest label `mpi`) before GoogleTest runs,
// with a short collective timeout, so a test that leaves the ranks out of step fails in a minute instead of
// hanging; the exit code is non-zero when a test failed on any rank.
#include <gtest/gtest.h>

#include <cstdio>

#include "engine/distributed.h"

int main(int argc, char** argv) {
  spikegrad::dist::init_distributed(&argc, &argv);
  spikegrad::dist::Communicator& ranks = spikegrad::dist::world();
  ranks.set_timeout(60);
  ::testing::InitGoogleTest(&argc, argv);
  const int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  double failures = failed;
  try {
    ranks.sum(&failures, 1, "the tests' verdict");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: %s\n", ranks.rank(), e.what());
    ranks.abort_job(1);
    return 1;
  }
  spikegrad::dist::finalize_distributed();
  return failures > 0 ? 1 : 0;
}
