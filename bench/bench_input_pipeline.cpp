// The JPEG input pipeline, one image at a time on one thread (images/s per core): read the file, decode it with
// libjpeg-turbo, transform, write float32 in [0,1] -- JpegFileSource::load, exactly what a loader worker runs.
// The baseline is PIL + torchvision on the same files in the same session (scripts/compare/
// input_pipeline_side_by_side.sh runs scripts/compare/input_pipeline_pil.py next to this binary); the target is
// to beat it per core.
//
// Data, generated once into a temporary folder (or into $SPIKEGRAD_BENCH_JPEG_DIR, reused when already complete, so
// the Python script reads the same files):
//   imagenet/train/n00000000/img_NNN.JPEG  200 images of 375..625 x 280..470 (ILSVRC's typical ~500x375, both
//       orientations), quality 90, 4:2:0 (camera JPEGs); content = smooth colour gradients, a few soft blobs and
//       edges, plus +-10 pixel noise, so the entropy decoder has realistic work (~50-60 KB per file).
//   tiny/train/n00000000/images/img_NNN.JPEG  200 images of 64x64, same content model, quality 90.
//   large/train/n00000000/img_NNN.JPEG  20 images of 1600x1200 (today's camera-sized photos, a minority in ILSVRC),
//       where the DCT-domain downscaling pays.
// Benchmarks (counter images_per_s; the label says what runs):
//   BM_ImageNetTrain{,FullDecode}    RandomResizedCrop(224) + flip + ToTensor; FullDecode: no DCT-domain scaling
//                                    (decodes the whole image at full size, as PIL does)
//   BM_ImageNetEval{,FullDecode}     Resize(256) + CenterCrop(224) + ToTensor
//   BM_Large{Train,Eval}{,FullDecode}  the same on the 1600x1200 set
//   BM_TinyImageNet{Train,Eval}      RandomCrop(64, padding 4) + flip / as is
//   BM_LoaderImageNetTrain/threads   the Loader, batch 64, N decode threads (wall-clock images/s of the process)
// With $SPIKEGRAD_BENCH_JPEG_DIR set, the evaluation outputs of the first kDumpCount files (sorted) of the imagenet
// and large sets are written there as <set>_eval_dct.f32 and <set>_eval_full.f32 (float32 (3,224,224) each), for the
// script's comparison with torchvision.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "datasets/image_folder.h"
#include "datasets/jpeg.h"
#include "datasets/loader.h"

namespace {

using namespace spikegrad;
namespace fs = std::filesystem;

constexpr int kImages = 200, kLargeImages = 20;
constexpr int kDumpCount = 50;
constexpr const char* kCompleteMarker = ".complete-v2";  // written last: a folder without it is regenerated

// Deterministic hash noise in [0, 1).
double unit(uint64_t i) {
  i = (i + 0x9e3779b97f4a7c15ULL) * 0xbf58476d1ce4e5b9ULL;
  i ^= i >> 31;
  i *= 0x94d049bb133111ebULL;
  i ^= i >> 29;
  return double(i >> 11) * (1.0 / 9007199254740992.0);
}

// Natural-ish RGB: per channel a gradient, three soft blobs and one hard-edged rectangle, plus noise. The blobs are
// separable Gaussians (tables per row and column), so a 1600x1200 image takes milliseconds.
std::vector<uint8_t> natural_image(int64_t width, int64_t height, uint64_t seed) {
  std::vector<uint8_t> rgb(size_t(width * height * 3));
  std::vector<double> blob_x(size_t(3 * width)), blob_y(size_t(3 * height));
  double blob_v[3][3], grad[3][3];
  for (int b = 0; b < 3; ++b) {
    const double cx = unit(seed * 97 + b) * double(width), cy = unit(seed * 97 + 10 + b) * double(height);
    const double r = (0.1 + 0.3 * unit(seed * 97 + 20 + b)) * double(std::min(width, height));
    for (int64_t x = 0; x < width; ++x)
      blob_x[size_t(b * width + x)] = std::exp(-(double(x) - cx) * (double(x) - cx) / (2 * r * r));
    for (int64_t y = 0; y < height; ++y)
      blob_y[size_t(b * height + y)] = std::exp(-(double(y) - cy) * (double(y) - cy) / (2 * r * r));
    for (int c = 0; c < 3; ++c) blob_v[b][c] = 160 * (unit(seed * 97 + 30 + 3 * b + c) - 0.5);
  }
  for (int c = 0; c < 3; ++c)
    for (int k = 0; k < 3; ++k) grad[c][k] = unit(seed * 97 + 50 + 3 * c + k);
  const int64_t rx = int64_t(unit(seed * 97 + 60) * double(width) * 0.6),
                ry = int64_t(unit(seed * 97 + 61) * double(height) * 0.6);
  const int64_t rw = width / 4 + 1, rh = height / 4 + 1;
  for (int64_t y = 0; y < height; ++y)
    for (int64_t x = 0; x < width; ++x) {
      const double u = double(x) / double(width), v = double(y) / double(height);
      const bool in_rect = x >= rx && x < rx + rw && y >= ry && y < ry + rh;
      for (int c = 0; c < 3; ++c) {
        double value = 40 + 150 * (grad[c][0] * u + grad[c][1] * v + grad[c][2] * u * v) / 1.5;
        for (int b = 0; b < 3; ++b)
          value += blob_v[b][c] * blob_x[size_t(b * width + x)] * blob_y[size_t(b * height + y)];
        if (in_rect) value = 255 - value;
        value += 20 * (unit((seed << 32) ^ uint64_t((y * width + x) * 3 + c)) - 0.5);
        rgb[size_t((y * width + x) * 3 + c)] = uint8_t(std::lround(std::clamp(value, 0.0, 255.0)));
      }
    }
  return rgb;
}

void write_file(const fs::path& path, const std::vector<uint8_t>& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "bench_input_pipeline: cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

void generate(const fs::path& root) {
  char name[32];
  for (int i = 0; i < kImages; ++i) {
    std::snprintf(name, sizeof(name), "img_%03d.JPEG", i);
    const bool landscape = unit(uint64_t(i) * 7 + 1) < 0.75;
    int64_t w = 375 + int64_t(unit(uint64_t(i) * 7 + 2) * 250), h = 280 + int64_t(unit(uint64_t(i) * 7 + 3) * 190);
    if (!landscape) std::swap(w, h);
    const std::vector<uint8_t> big = natural_image(w, h, uint64_t(i) + 1);
    write_file(root / "imagenet/train/n00000000" / name,
               encode_jpeg(big.data(), w, h, JpegPixelFormat::Rgb, 90, JpegSubsampling::S420));
    const std::vector<uint8_t> small = natural_image(64, 64, uint64_t(i) + 1000);
    write_file(root / "tiny/train/n00000000/images" / name,
               encode_jpeg(small.data(), 64, 64, JpegPixelFormat::Rgb, 90, JpegSubsampling::S420));
  }
  for (int i = 0; i < kLargeImages; ++i) {
    std::snprintf(name, sizeof(name), "img_%03d.JPEG", i);
    const std::vector<uint8_t> big = natural_image(1600, 1200, uint64_t(i) + 5000);
    write_file(root / "large/train/n00000000" / name,
               encode_jpeg(big.data(), 1600, 1200, JpegPixelFormat::Rgb, 90, JpegSubsampling::S420));
  }
  std::ofstream(root / "tiny/wnids.txt") << "n00000000\n";
  std::ofstream(root / kCompleteMarker) << "200 images\n";
}

struct BenchData {
  fs::path root;
  bool temporary = false;
};

const BenchData& bench_data() {
  static const BenchData data = [] {
    BenchData d;
    if (const char* dir = std::getenv("SPIKEGRAD_BENCH_JPEG_DIR"); dir != nullptr && *dir != '\0') {
      d.root = dir;
    } else {
      std::string pattern = (fs::temp_directory_path() / "spikegrad-bench-jpeg-XXXXXX").string();
      if (mkdtemp(pattern.data()) == nullptr) {
        std::perror("bench_input_pipeline: mkdtemp");
        std::exit(1);
      }
      d.root = pattern;
      d.temporary = true;
      static std::string remove_at_exit;
      remove_at_exit = pattern;
      std::atexit([] { fs::remove_all(remove_at_exit); });
    }
    if (!fs::exists(d.root / kCompleteMarker)) generate(d.root);
    return d;
  }();
  return data;
}

Dataset imagenet(bool dct_scaling, const char* set = "imagenet") {
  JpegDatasetOptions o;
  o.dct_scaling = dct_scaling;
  return load_imagenet((bench_data().root / set).string(), Split::Train, o);
}

Dataset tiny() { return load_tiny_imagenet((bench_data().root / "tiny").string(), Split::Train); }

// One image per iteration, cycling through the files; each gets fresh augmentation counters.
void run_source(benchmark::State& state, const Dataset& d, SampleMode mode, const std::string& label) {
  const SampleSource& source = *d.source;
  std::vector<float> out(size_t(source.layout().numel()));
  Generator gen(123);
  uint64_t sample = 0;
  for (auto _ : state) {
    gen.set_state(123, sample * source.draws_per_sample());
    source.load(int64_t(sample % uint64_t(source.size())), mode, gen, out.data());
    benchmark::DoNotOptimize(out.data());
    ++sample;
  }
  state.counters["images_per_s"] = benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
  state.SetLabel(label);
}

void BM_ImageNetTrain(benchmark::State& state) {
  run_source(state, imagenet(true), SampleMode::Train, "RandomResizedCrop(224)+flip, DCT-scaled decode");
}
void BM_ImageNetTrainFullDecode(benchmark::State& state) {
  run_source(state, imagenet(false), SampleMode::Train, "RandomResizedCrop(224)+flip, full decode");
}
void BM_ImageNetEval(benchmark::State& state) {
  run_source(state, imagenet(true), SampleMode::Evaluate, "Resize(256)+CenterCrop(224), DCT-scaled decode");
}
void BM_ImageNetEvalFullDecode(benchmark::State& state) {
  run_source(state, imagenet(false), SampleMode::Evaluate, "Resize(256)+CenterCrop(224), full decode");
}
void BM_LargeTrain(benchmark::State& state) {
  run_source(state, imagenet(true, "large"), SampleMode::Train, "1600x1200: RandomResizedCrop(224)+flip, DCT-scaled");
}
void BM_LargeTrainFullDecode(benchmark::State& state) {
  run_source(state, imagenet(false, "large"), SampleMode::Train, "1600x1200: RandomResizedCrop(224)+flip, full decode");
}
void BM_LargeEval(benchmark::State& state) {
  run_source(state, imagenet(true, "large"), SampleMode::Evaluate,
             "1600x1200: Resize(256)+CenterCrop(224), DCT-scaled");
}
void BM_LargeEvalFullDecode(benchmark::State& state) {
  run_source(state, imagenet(false, "large"), SampleMode::Evaluate,
             "1600x1200: Resize(256)+CenterCrop(224), full decode");
}
void BM_TinyImageNetTrain(benchmark::State& state) {
  run_source(state, tiny(), SampleMode::Train, "RandomCrop(64,pad 4)+flip");
}
void BM_TinyImageNetEval(benchmark::State& state) { run_source(state, tiny(), SampleMode::Evaluate, "64x64 as is"); }

void BM_LoaderImageNetTrain(benchmark::State& state) {
  const Dataset d = imagenet(true);
  LoaderOptions o = LoaderOptions::training(d, 64, 1);
  o.drop_last = false;
  o.decode_threads = state.range(0);
  Loader loader(d, o);
  Batch batch;
  int64_t images = 0;
  for (auto _ : state) {
    if (!loader.next(batch)) loader.next(batch);
    images += batch.labels.numel();
  }
  state.counters["images_per_s"] = benchmark::Counter(double(images), benchmark::Counter::kIsRate);
  state.SetLabel("batch 64, " + std::to_string(state.range(0)) + " decode threads (wall clock)");
}

// The evaluation outputs of the first kDumpCount files of each set, for the Python script's comparison with
// torchvision: <set>_eval_{dct,full}.f32.
void dump_eval_outputs() {
  const char* dir = std::getenv("SPIKEGRAD_BENCH_JPEG_DIR");
  if (dir == nullptr || *dir == '\0') return;
  for (const char* set : {"imagenet", "large"})
    for (const bool dct : {true, false}) {
      const Dataset d = imagenet(dct, set);
      std::vector<float> out(size_t(d.source->layout().numel()));
      std::ofstream file(fs::path(dir) / (std::string(set) + (dct ? "_eval_dct.f32" : "_eval_full.f32")),
                         std::ios::binary);
      Generator gen(0);
      for (int64_t i = 0; i < std::min<int64_t>(kDumpCount, d.size()); ++i) {
        d.source->load(i, SampleMode::Evaluate, gen, out.data());
        file.write(reinterpret_cast<const char*>(out.data()), std::streamsize(out.size() * sizeof(float)));
      }
    }
}

}  // namespace

BENCHMARK(BM_ImageNetTrain)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ImageNetTrainFullDecode)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ImageNetEval)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ImageNetEvalFullDecode)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LargeTrain)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LargeTrainFullDecode)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LargeEval)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LargeEvalFullDecode)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TinyImageNetTrain)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TinyImageNetEval)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_LoaderImageNetTrain)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  bench_data();  // generate before any timing
  dump_eval_outputs();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
