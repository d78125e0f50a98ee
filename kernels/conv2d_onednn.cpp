// conv2d on oneDNN (see kernels/conv2d_onednn.h): one cached plan per (pass, shape, layout, bias) — the
// convolution primitive plus, per argument, the reorder between the caller's NCHW/OIHW array and the layout
// the primitive runs on — executed with per-call scratch from the engine's CPU caching allocator.
#include "kernels/conv2d_onednn.h"

#include <omp.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "engine/allocator.h"
#include "engine/check.h"

namespace spikegrad {

namespace {
using dnnl::memory;
using Tag = memory::format_tag;
constexpr memory::data_type kF32 = memory::data_type::f32;

enum class Pass { forward, backward_data, backward_weight };
const char* pass_name(Pass p) {
  return p == Pass::forward ? "forward" : p == Pass::backward_data ? "backward data" : "backward weight";
}

const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// A primitive and the scratchpad it asks for. Every primitive runs with a user scratchpad given per call, so
// one cached primitive may execute on several threads at once (a library-owned scratchpad would be shared).
struct Runnable {
  dnnl::primitive primitive;
  memory::desc scratchpad;
  void run(dnnl::stream& stream, std::unordered_map<int, memory> args, void* scratchpad_buffer) const {
    if (scratchpad.get_size() > 0) args[DNNL_ARG_SCRATCHPAD] = memory(scratchpad, cpu_engine(), scratchpad_buffer);
    primitive.execute(stream, args);
  }
};

dnnl::primitive_attr user_scratchpad_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

// One argument of the convolution: the caller's plain array (`user`), the layout the primitive reads or
// writes (`inner`), and the reorder between them when needed. Gradients always go through a scratch: the
// reorder back carries a `sum` post-op, which turns oneDNN's "write" into the contract's "+=".
struct Argument {
  int id = 0;
  bool output = false;
  memory::desc user, inner;
  bool staged = false;  // inner is a scratch, filled (input) or emptied (output) by `reorder`
  Runnable reorder;
};

Argument make_argument(int id, bool output, bool accumulate, const memory::desc& user, const memory::desc& inner) {
  Argument a{id, output, user, inner, accumulate || !(user == inner), {}};
  if (!a.staged) return a;
  dnnl::primitive_attr attr = user_scratchpad_attr();
  if (accumulate) {
    dnnl::post_ops sum;
    sum.append_sum(1.f);
    attr.set_post_ops(sum);
  }
  const dnnl::reorder::primitive_desc pd = output ? dnnl::reorder::primitive_desc(cpu_engine(), inner, cpu_engine(), user, attr)
                                                  : dnnl::reorder::primitive_desc(cpu_engine(), user, cpu_engine(), inner, attr);
  a.reorder = {dnnl::reorder(pd), pd.scratchpad_desc()};
  return a;
}

// Per-call scratch comes from the engine's CPU caching allocator (engine/allocator.h CpuScratch): one block per
// staged argument's inner memory, and one scratchpad that the reorders and the convolution share (they run one
// after another on an in-order stream, which oneDNN allows). Not memory oneDNN allocates itself: its allocator
// maps and unmaps multi-MiB buffers on every call (page faults and page clearing were ~5% of a VGGSNN training
// step) that the allocator's peak never saw. A block per buffer rather than one for the whole call: a staged
// activation or gradient has a tensor's size, so it reuses the blocks that tensors of that size left in the
// cache (one block of the sum would be a size nothing else asks for, held in the cache on top of them). Measured
// on a VGGSNN B=64 training step (bench_train_step): process max RSS 925 MiB with a block per buffer, 1111 MiB
// with one block per call, 1040–1049 MiB with oneDNN allocating.
struct Plan {
  Runnable convolution;
  std::vector<Argument> arguments;
  size_t scratchpad_bytes = 0;  // the largest scratchpad of the convolution and the reorders
};

void size_scratchpad(Plan& plan) {
  plan.scratchpad_bytes = plan.convolution.scratchpad.get_size();
  for (const Argument& a : plan.arguments)
    if (a.staged) plan.scratchpad_bytes = std::max(plan.scratchpad_bytes, a.reorder.scratchpad.get_size());
}

struct Descs {
  memory::dims x, w, b, y, strides, pad_l, pad_r;
};
Descs dims_of(const Conv2dShape& s) {
  // pad_r = pad: oneDNN derives P as (H + pad_l + pad_r − R) / stride + 1 with floor division, as we do.
  return {{s.N, s.C, s.H, s.W}, {s.K, s.C, s.R, s.S}, {s.K},       {s.N, s.K, s.P, s.Q},
          {s.stride, s.stride}, {s.pad, s.pad},        {s.pad, s.pad}};
}
memory::desc plain(const memory::dims& d, Tag tag) { return memory::desc(d, kF32, tag); }

dnnl::convolution_forward::primitive_desc forward_pd(const Conv2dShape& s, bool bias, OnednnLayout layout) {
  const Descs d = dims_of(s);
  const bool any = layout == OnednnLayout::blocked;
  const dnnl::convolution_forward::desc desc(
      dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, plain(d.x, any ? Tag::any : Tag::nchw),
      plain(d.w, any ? Tag::any : Tag::oihw), bias ? plain(d.b, Tag::x) : memory::desc(),
      plain(d.y, any ? Tag::any : Tag::nchw), d.strides, d.pad_l, d.pad_r);
  return dnnl::convolution_forward::primitive_desc(desc, user_scratchpad_attr(), cpu_engine());
}

Plan make_plan(Pass pass, const Conv2dShape& s, bool bias, OnednnLayout layout) {
  const Descs d = dims_of(s);
  const bool any = layout == OnednnLayout::blocked;
  const memory::desc x_user = plain(d.x, Tag::nchw), w_user = plain(d.w, Tag::oihw), y_user = plain(d.y, Tag::nchw);
  const memory::desc x_any = plain(d.x, any ? Tag::any : Tag::nchw), w_any = plain(d.w, any ? Tag::any : Tag::oihw),
                     y_any = plain(d.y, any ? Tag::any : Tag::nchw), b_user = plain(d.b, Tag::x);
  Plan plan;
  switch (pass) {
    case Pass::forward: {
      const auto pd = forward_pd(s, bias, layout);
      plan.convolution = {dnnl::convolution_forward(pd), pd.scratchpad_desc()};
      plan.arguments = {make_argument(DNNL_ARG_SRC, false, false, x_user, pd.src_desc()),
                        make_argument(DNNL_ARG_WEIGHTS, false, false, w_user, pd.weights_desc()),
                        make_argument(DNNL_ARG_DST, true, false, y_user, pd.dst_desc())};
      if (bias) plan.arguments.push_back(make_argument(DNNL_ARG_BIAS, false, false, b_user, pd.bias_desc()));
      break;
    }
    case Pass::backward_data: {
      const dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct, x_any, w_any, y_any,
                                                       d.strides, d.pad_l, d.pad_r);
      const dnnl::convolution_backward_data::primitive_desc pd(desc, user_scratchpad_attr(), cpu_engine(),
                                                               forward_pd(s, false, layout));
      plan.convolution = {dnnl::convolution_backward_data(pd), pd.scratchpad_desc()};
      plan.arguments = {make_argument(DNNL_ARG_WEIGHTS, false, false, w_user, pd.weights_desc()),
                        make_argument(DNNL_ARG_DIFF_DST, false, false, y_user, pd.diff_dst_desc()),
                        make_argument(DNNL_ARG_DIFF_SRC, true, true, x_user, pd.diff_src_desc())};
      break;
    }
    case Pass::backward_weight: {
      const dnnl::convolution_backward_weights::desc desc(dnnl::algorithm::convolution_direct, x_any, w_any,
                                                          bias ? b_user : memory::desc(), y_any, d.strides, d.pad_l,
                                                          d.pad_r);
      const dnnl::convolution_backward_weights::primitive_desc pd(desc, user_scratchpad_attr(), cpu_engine(),
                                                                  forward_pd(s, bias, layout));
      plan.convolution = {dnnl::convolution_backward_weights(pd), pd.scratchpad_desc()};
      plan.arguments = {make_argument(DNNL_ARG_SRC, false, false, x_user, pd.src_desc()),
                        make_argument(DNNL_ARG_DIFF_DST, false, false, y_user, pd.diff_dst_desc()),
                        make_argument(DNNL_ARG_DIFF_WEIGHTS, true, true, w_user, pd.diff_weights_desc())};
      if (bias)
        plan.arguments.push_back(make_argument(DNNL_ARG_DIFF_BIAS, true, true, b_user, pd.diff_bias_desc()));
      break;
    }
  }
  size_scratchpad(plan);
  return plan;
}

// Plans by (pass, layout, bias, N, C, H, W, K, R, S, stride, pad, threads). Creating a primitive descriptor
// walks oneDNN's implementation list and JIT-compiles a kernel (milliseconds); a training step asks for the
// same dozen shapes every time. The thread count is part of the key because oneDNN splits the work for the
// OpenMP thread count current when the primitive is created and runs that many threads.
using PlanKey = std::array<int64_t, 13>;
const Plan& cached_plan(Pass pass, const Conv2dShape& s, bool bias, OnednnLayout layout) {
  static std::mutex mutex;
  static std::map<PlanKey, std::unique_ptr<const Plan>> plans;  // node-based: references stay valid
  const PlanKey key{int64_t(pass), int64_t(layout), int64_t(bias), s.N, s.C, s.H, s.W, s.K, s.R, s.S, s.stride, s.pad,
                      int64_t(omp_get_max_threads())};
  const std::lock_guard<std::mutex> lock(mutex);
  auto it = plans.find(key);
  if (it == plans.end()) {
    try {
      it = plans.emplace(key, std::make_unique<const Plan>(make_plan(pass, s, bias, layout))).first;
    } catch (const dnnl::error& e) {
      SG_FAIL("conv2d (oneDNN) " << pass_name(pass) << ": no primitive for N=" << s.N << " C=" << s.C << " H=" << s.H
                                 << " W=" << s.W << " K=" << s.K << " R=" << s.R << " S=" << s.S
                                 << " stride=" << s.stride << " pad=" << s.pad << ": " << e.what());
    }
  }
  return *it->second;
}

// Stages the inputs in, runs the convolution, stages the outputs out (adding where accumulating).
void execute(const Plan& plan, const std::unordered_map<int, void*>& pointers) {
  // The blocks outlive the stream's work: stream.wait() comes first.
  const CpuScratch scratchpad_block(plan.scratchpad_bytes);
  void* const scratchpad = scratchpad_block.data();
  std::vector<CpuScratch> staging;
  staging.reserve(plan.arguments.size());
  dnnl::stream stream(cpu_engine());
  std::unordered_map<int, memory> args;
  std::vector<std::pair<const Argument*, memory>> outputs_to_stage;  // (argument, the caller's array)
  for (const Argument& a : plan.arguments) {
    memory user(a.user, cpu_engine(), pointers.at(a.id));
    if (!a.staged) {
      args[a.id] = user;
      continue;
    }
    memory inner(a.inner, cpu_engine(), staging.emplace_back(a.inner.get_size()).data());
    if (a.output)
      outputs_to_stage.emplace_back(&a, user);
    else
      a.reorder.run(stream, {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, inner}}, scratchpad);
    args[a.id] = inner;
  }
  plan.convolution.run(stream, args, scratchpad);
  for (const auto& [a, user] : outputs_to_stage)
    a->reorder.run(stream, {{DNNL_ARG_FROM, args.at(a->id)}, {DNNL_ARG_TO, user}}, scratchpad);
  stream.wait();
}

}  // namespace

void conv2d_forward_onednn(const float* x, const float* w, const float* b, float* y, const Conv2dShape& s,
                           OnednnLayout layout) {
  std::unordered_map<int, void*> p{{DNNL_ARG_SRC, const_cast<float*>(x)},
                                   {DNNL_ARG_WEIGHTS, const_cast<float*>(w)},
                                   {DNNL_ARG_DST, y}};
  if (b) p[DNNL_ARG_BIAS] = const_cast<float*>(b);
  execute(cached_plan(Pass::forward, s, b != nullptr, layout), p);
}

void conv2d_backward_data_onednn(const float* w, const float* gy, float* gx, const Conv2dShape& s,
                                 OnednnLayout layout) {
  execute(cached_plan(Pass::backward_data, s, false, layout),
          {{DNNL_ARG_WEIGHTS, const_cast<float*>(w)}, {DNNL_ARG_DIFF_DST, const_cast<float*>(gy)}, {DNNL_ARG_DIFF_SRC, gx}});
}

void conv2d_backward_weight_onednn(const float* x, const float* gy, float* gw, float* gb, const Conv2dShape& s,
                                   OnednnLayout layout) {
  SG_CHECK(gw != nullptr, "conv2d (oneDNN) backward weight: gw must not be null (the bias gradient alone is the "
                          "Eigen path's sum over gy)");
  std::unordered_map<int, void*> p{{DNNL_ARG_SRC, const_cast<float*>(x)},
                                   {DNNL_ARG_DIFF_DST, const_cast<float*>(gy)},
                                   {DNNL_ARG_DIFF_WEIGHTS, gw}};
  if (gb) p[DNNL_ARG_DIFF_BIAS] = gb;
  execute(cached_plan(Pass::backward_weight, s, gb != nullptr, layout), p);
}

}  // namespace spikegrad
