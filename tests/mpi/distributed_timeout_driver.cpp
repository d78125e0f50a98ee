// distributed_timeout_driver hang|die: under mpirun -np 2, rank 1 never joins rank 0's sum -- it sleeps
// (hang) or kills itself with SIGKILL (die) -- and rank 0 must not wait forever: with a 2 s collective
// timeout it reports the collective and its rank and ends the job (the path `spikegrad train` takes:
// engine/distributed.h, apps/main.cpp). ctest checks the message and that the job ends within its TIMEOUT.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>

#include "engine/check.h"
#include "engine/distributed.h"

int main(int argc, char** argv) {
  spikegrad::dist::init_distributed(&argc, &argv);
  spikegrad::dist::Communicator& ranks = spikegrad::dist::world();
  if (argc != 2 || ranks.size() != 2 || (std::strcmp(argv[1], "hang") != 0 && std::strcmp(argv[1], "die") != 0)) {
    std::fprintf(stderr, "usage: mpirun -np 2 %s hang|die\n", argv[0]);
    ranks.abort_job(2);
    return 2;
  }
  ranks.set_timeout(2);
  if (ranks.rank() == 1) {
    if (std::strcmp(argv[1], "die") == 0) std::raise(SIGKILL);
    sleep(120);  // far beyond ctest's TIMEOUT: only rank 0's abort ends this rank in time
    return 0;
  }
  try {
    double value = 1;
    ranks.sum(&value, 1, "the driver's sum");
    std::fprintf(stderr, "driver: the sum completed without rank 1\n");
    return 0;
  } catch (const spikegrad::Error& e) {
    std::fprintf(stderr, "driver: error: %s\n", e.what());
    ranks.abort_job(3);
    return 3;
  }
}
