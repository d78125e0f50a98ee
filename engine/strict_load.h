// Strict checkpoint loading. PyTorch's load_state_dict(strict=False), used by the TET and RGA reference
// code, silently skips tensors whose names do not match, so a renamed layer trains from scratch while
// the run looks resumed (pitfalls.md #12). Here a checkpoint either matches the model exactly or
// nothing is copied and one error lists everything that is wrong.
#pragma once
#include <string>

#include "engine/named_tensor.h"

namespace spikegrad {

// Copies each source tensor into the destination tensor of the same name (any devices, via copy_from).
// Before copying anything, checks that both lists have unique names, the same set of names, and per name
// the same shape and dtype; otherwise throws one Error:
//   "<what>: checkpoint does not match the model: missing [a, b]; unexpected [c];
//    shape mismatch [d: expected (64,3,3,3), got (64,1,3,3)]; dtype mismatch [e: expected float32, got float64]"
// where "expected" is the destination (the model) and "got" the source (the checkpoint).
void strict_copy(const NamedTensors& destination, const NamedTensors& source, const std::string& what);

}  // namespace spikegrad
