// The built-in models: vggsnn, vgg11, vgg11_rat, alexnet, small_cnn (see models/zoo.cpp).
#pragma once

namespace spikegrad {
// Called once by the registry before its first lookup; a plain call (not static registration) so the
// linker cannot drop the models from the static library.
void register_builtin_models();
}  // namespace spikegrad
