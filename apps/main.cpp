// spikegrad: train | eval | attack. Errors become one line on stderr and exit code 2 (apps/cli.cpp).
#include "apps/cli.h"

int main(int argc, char** argv) { return spikegrad::app::cli_main(argc, argv); }
