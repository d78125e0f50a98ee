// The registered neurons beyond lif and if (engine/neuron_registry.cpp): each is its header's #include and
// one SG_REGISTER_NEURON line. This file is compiled twice — as C++ inside engine/neuron_registry.cpp (the
// registry entries and the CPU kernels) and as CUDA where CUDA or the emulated backend is on (the CUDA
// kernels); engine/neuron_registration.h explains why that works in every build mode.
#include "engine/neuron_registration.h"

#include "kernels/neurons/parametric_lif.h"
SG_REGISTER_NEURON(spikegrad::neurons::ParametricLif);
#include "examples/neurons/adaptive_lif.h"
SG_REGISTER_NEURON(spikegrad::examples::AdaptiveLif);
#include "examples/neurons/tau_lif.h"
SG_REGISTER_NEURON(spikegrad::examples::TauLif);
