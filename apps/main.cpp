// spikegrad: train | eval | attack. Errors become one line on stderr and exit code 2 (apps/cli.cpp).
// Under mpirun the process joins the MPI job first (engine/distributed.h); an error on any rank then ends the
// whole job (MPI_Abort) rather than leaving the other ranks to wait for it until --collective-timeout.
#include <cstdio>
#include <exception>

#include "apps/cli.h"
#include "engine/distributed.h"

int main(int argc, char** argv) {
  try {
    spikegrad::dist::init_distributed(&argc, &argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "spikegrad: error: %s\n", e.what());
    return 2;
  }
  const int code = spikegrad::app::cli_main(argc, argv);
  // 130 (interrupted) is reached by every rank together, after rank 0 saved: a normal end for MPI.
  if (code != 0 && code != 130) spikegrad::dist::world().abort_job(code);
  spikegrad::dist::finalize_distributed();
  return code;
}
