// The built-in models: vggsnn, vgg11, vgg11_rat, alexnet, small_cnn (stage lists, models/zoo.cpp) and the
// residual networks spiking_resnet18/34/50, sew_resnet18/34/50, resnet19, wrn16_4 (graphs, models/resnets.cpp).
#pragma once

namespace spikegrad {
// Called once by the registry before its first lookup; a plain call (not static registration) so the
// linker cannot drop the models from the static library.
void register_builtin_models();
void register_residual_models();  // models/resnets.cpp
}  // namespace spikegrad
