// Firing rate of a spike tap: spikes (T,B,C,S...) -> rates (T,B), the scalar time series that the
// KDE mutual information (kernels/kde_mi.h) consumes. Rows r = t*B + b are contiguous runs of
// F = C*S elements, where C = dim 2 and S = the product of the dims after it (S = 1 for (T,B,F) taps).
//
// Math, per row r:
//   mean        rate[r] = scale * (1/F) * sum_f s[r,f]              (TMI spec §1.2: mean over C,H,W, x255)
//   channel_max rate[r] = scale * max_c (1/S) * sum_s s[r,c,s]      (the paper's channel-max ablation)
// Channel max is defined as the maximum over channels of each channel's spatial mean; ties (common with
// binary spikes) go to the lowest channel index on both backends, so CPU and CUDA route gradients alike.
//
// Backward (accumulating, +=):
//   mean        gs[r,f]     += g[r] * (scale/F)                     for every f
//   channel_max gs[r,c*,s]  += g[r] * (scale/S)                     only for the saved c* = argmax[r]
// (the max is piecewise linear: its derivative selects the winning channel; a tie is a kink and we take
// the subgradient of the first winner). The factor scale/F (or scale/S) is formed once in double by the
// caller so both backends multiply by the same rounded number.
// Saved for backward: channel_max saves argmax (int32, (T,B)); mean saves nothing.
// Accumulation: the CPU reference sums in double; CUDA sums in float with a tree per row (binary spikes
// sum to exact integers either way).
// Bytes (bandwidth benchmark): forward reads rows*F elements; mean backward writes rows*F, channel_max
// backward touches rows*S.
#pragma once
#include <cstdint>

#include "kernels/common.h"

namespace spikegrad {

// CPU reference, instantiated for float and double.
template <class T> void firing_rate_mean_forward_cpu(const T* spikes, T* rate, int64_t rows, int64_t F, double scale);
template <class T> void firing_rate_mean_backward_cpu(const T* grate, T* gspikes, int64_t rows, int64_t F, T factor);
template <class T>
void firing_rate_chmax_forward_cpu(const T* spikes, T* rate, int32_t* argmax, int64_t rows, int64_t C, int64_t S,
                                   double scale);
template <class T>
void firing_rate_chmax_backward_cpu(const T* grate, const int32_t* argmax, T* gspikes, int64_t rows, int64_t C,
                                    int64_t S, T factor);

// CUDA, float32.
void firing_rate_mean_forward_cuda(const float* spikes, float* rate, int64_t rows, int64_t F, float scale);
void firing_rate_mean_backward_cuda(const float* grate, float* gspikes, int64_t rows, int64_t F, float factor);
void firing_rate_chmax_forward_cuda(const float* spikes, float* rate, int32_t* argmax, int64_t rows, int64_t C, int64_t S,
                                    float scale);
void firing_rate_chmax_backward_cuda(const float* grate, const int32_t* argmax, float* gspikes, int64_t rows,
                                     int64_t C, int64_t S, float factor);

}  // namespace spikegrad
