// The JPEG datasets' failure modes and their use through the loader, on folders the tests write: every layout
// error names the path; a corrupt file fails when the loader reaches it, naming the file, or is left out and
// counted under skip_corrupt; batches do not depend on the number of decode threads; resume mid-epoch and lazy
// validation splits work on JPEG folders.
#include <gtest/gtest.h>

#include <map>

#include "datasets/image_folder.h"
#include "datasets/loader.h"
#include "support/jpeg_files.h"
#include "support/op_cases.h"
#include "support/loader_batches.h"

namespace spikegrad::testing {
namespace {


TEST(JpegDatasets, LayoutErrorsNameThePath) {
  TempFolder tmp;
  const fs::path tiny = tmp.path / "tiny", net = tmp.path / "imagenet";
  const std::string t = tiny.string(), n = net.string();
  expect_error([&] { load_tiny_imagenet(t, Split::Train); }, {"tiny-imagenet: missing folder '" + t + "'"});
  write_tiny(tiny);
  fs::remove(tiny / "wnids.txt");
  expect_error([&] { load_tiny_imagenet(t, Split::Train); }, {"cannot open '" + (tiny / "wnids.txt").string() + "'"});
  write_tiny(tiny);
  write_text(tiny / "wnids.txt", "n02\nn00\nn01\nn07\n");  // a class without a folder
  expect_error([&] { load_tiny_imagenet(t, Split::Train); },
               {"missing folder '" + (tiny / "train/n07/images").string() + "'"});
  fs::create_directories(tiny / "train/n07/images");
  write_text(tiny / "train/n07/images/notes.txt", "x");
  expect_error([&] { load_tiny_imagenet(t, Split::Train); },
               {"no JPEG images", "class folder '" + (tiny / "train/n07/images").string() + "'"});
  write_text(tiny / "wnids.txt", "n02\nn00\nn01\nn02\n");
  expect_error([&] { load_tiny_imagenet(t, Split::Train); }, {"wnids.txt' line 4 repeats wnid 'n02'"});
  write_tiny(tiny);
  const fs::path annotations = tiny / "val/val_annotations.txt";
  write_text(annotations, "val_0.JPEG\tn00\t0\t0\t1\t1\nval_3.JPEG\tn09\t0\t0\t1\t1\n");
  expect_error([&] { load_tiny_imagenet(t, Split::Test); },
               {annotations.string() + "' line 2 names class 'n09'", "wnids.txt"});
  write_text(annotations, "val_0.JPEG\tn00\nval_99.JPEG\tn01\n");
  expect_error([&] { load_tiny_imagenet(t, Split::Test); },
               {"'" + (tiny / "val/images/val_99.JPEG").string() + "', listed in '" + annotations.string() +
                "' line 2, is missing"});
  write_text(annotations, "val_0.JPEG\n");
  expect_error([&] { load_tiny_imagenet(t, Split::Test); }, {annotations.string() + "' line 1: expected"});
  write_text(annotations, "val_0.JPEG n00\nval_0.JPEG n01\n");
  expect_error([&] { load_tiny_imagenet(t, Split::Test); }, {"lists 'val_0.JPEG' more than once"});

  expect_error([&] { load_imagenet(n, Split::Train); }, {"imagenet: missing folder '" + n + "'"});
  write_imagenet(net, false);
  fs::create_directories(net / "train/n04");
  expect_error([&] { load_imagenet(n, Split::Train); }, {"no JPEG images", (net / "train/n04").string()});
  fs::remove(net / "train/n04");
  fs::remove(net / "val_labels.txt");
  expect_error([&] { load_imagenet(n, Split::Test); },
               {"missing label file '" + (net / "val_labels.txt").string() + "'"});
  const fs::path labels = net / "val_labels.txt";
  write_text(labels, "ILSVRC2012_val_1.JPEG n01\nILSVRC2012_val_2.JPEG n77\n");
  expect_error([&] { load_imagenet(n, Split::Test); }, {labels.string() + "' line 2 names class 'n77'"});
  write_text(labels, "ILSVRC2012_val_1.JPEG 3\n");
  expect_error([&] { load_imagenet(n, Split::Test); }, {labels.string() + "' line 1: class index 3 is outside [0, 3)"});
  write_text(labels, "ILSVRC2012_val_1.JPEG n01 extra\n");
  expect_error([&] { load_imagenet(n, Split::Test); },
               {labels.string() + "' line 1: expected '<file> <wnid or class index>'"});
  write_text(labels, "\nILSVRC2012_val_8.JPEG n01\n");
  expect_error([&] { load_imagenet(n, Split::Test); }, {"'" + (net / "val/ILSVRC2012_val_8.JPEG").string() +
                                                        "', listed in '" + labels.string() + "' line 2, is missing"});
  fs::create_directories(net / "val/n99");
  write_bytes(net / "val/n99/a.JPEG", class_color_jpeg(8, 8, 0, 0));
  expect_error([&] { load_imagenet(n, Split::Test); },
               {"class folder '" + (net / "val/n99").string() + "' is not a class"});
  fs::remove_all(net / "train");
  expect_error([&] { load_imagenet(n, Split::Test); }, {"missing folder '" + (net / "train").string() + "'"});
  JpegDatasetOptions bad;
  bad.recipe = "random";
  expect_error([&] { resolve_jpeg_transform("imagenet", bad); }, {"resized-crop|pad-crop", "'random'"});
  bad = {};
  bad.image_size = 224;
  bad.resize_size = 200;
  expect_error([&] { resolve_jpeg_transform("imagenet", bad); }, {"imagenet: the evaluation resize", "got 200"});
}

// A truncated JPEG and a PNG named .JPEG (as ImageNet's n02105855_2933) in class n02 of an ImageNet folder.
void add_corrupt_files(const fs::path& root) {
  const Bytes good = jpeg_rgb(smooth_pixels(48, 40, 3, 7), 48, 40, 90);
  write_bytes(root / "train/n02/n02_cut.JPEG", Bytes(good.begin(), good.begin() + long(good.size() * 2 / 3)));
  write_bytes(root / "train/n02/n02_png.JPEG", Bytes{0x89, 'P', 'N', 'G', 13, 10, 26, 10, 0, 0, 0, 13});
}

TEST(JpegDatasets, CorruptFilesFailWhenReachedOrAreSkippedWithACount) {
  TempFolder tmp;
  write_imagenet(tmp.path, true);
  add_corrupt_files(tmp.path);
  JpegDatasetOptions options;
  options.image_size = 16;
  // The default scan opens no file: the corrupt ones are listed and fail when read, naming the file.
  const Dataset listed = load_imagenet(tmp.path.string(), Split::Train, options);
  ASSERT_EQ(listed.size(), 13);
  EXPECT_TRUE(listed.source->skipped_files().empty());
  expect_error([&] { load_sample(listed, 7, SampleMode::Evaluate); },
               {"'" + (tmp.path / "train/n02/n02_cut.JPEG").string() + "' is truncated"});
  expect_error([&] { load_sample(listed, 8, SampleMode::Train); },
               {"'" + (tmp.path / "train/n02/n02_png.JPEG").string() + "' is not a JPEG file", "PNG"});
  LoaderOptions lo = LoaderOptions::evaluation(4);
  lo.decode_threads = 3;
  Loader loader(listed, lo);
  Batch b;
  ASSERT_TRUE(loader.next(b));  // rows 0..3
  expect_error([&] { loader.next(b); }, {"n02_cut.JPEG' is truncated"});

  // skip_corrupt: both are left out at scan time and reported, each naming its file.
  options.skip_corrupt = true;
  options.scan_threads = 3;
  const Dataset skipped = load_imagenet(tmp.path.string(), Split::Train, options);
  EXPECT_EQ(skipped.size(), 11);
  const std::vector<std::string> reasons = skipped.source->skipped_files();
  ASSERT_EQ(reasons.size(), 2u);
  EXPECT_NE(reasons[0].find("n02_cut.JPEG' is truncated"), std::string::npos) << reasons[0];
  EXPECT_NE(reasons[1].find("n02_png.JPEG' is not a JPEG file"), std::string::npos) << reasons[1];
  EXPECT_EQ(skipped.labels.to_vector<int32_t>(), (std::vector<int32_t>{0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2}));
  Loader clean(skipped, lo);
  EXPECT_EQ(whole_epoch(clean).size(), 3u);
  // A class whose every image is unreadable is an error, not a silently missing class.
  for (const char* f : {"n02_0.JPEG", "n02_1.JPEG", "n02_2.JPEG"})
    write_bytes(tmp.path / "train/n02" / f, Bytes{0xFF, 0xD8, 0xFF});
  expect_error([&] { load_imagenet(tmp.path.string(), Split::Train, options); },
               {"every image in '" + (tmp.path / "train/n02").string() + "' is unreadable"});
}

TEST(JpegDatasets, LoaderBatchesDoNotDependOnThreadsAndResumeMidEpoch) {
  TempFolder tmp;
  write_imagenet(tmp.path, true);
  JpegDatasetOptions options;
  options.image_size = 20;
  const Dataset d = load_imagenet(tmp.path.string(), Split::Train, options);
  LoaderOptions lo = LoaderOptions::training(d, 3, 8);
  EXPECT_EQ(lo.sample_mode, SampleMode::Train);
  lo.decode_threads = 1;
  Loader one(d, lo);
  std::vector<Batch> expected = whole_epoch(one);
  const std::vector<Batch> epoch1 = whole_epoch(one);
  expected.insert(expected.end(), epoch1.begin(), epoch1.end());  // 3 + 3 batches of 3 (11 samples, drop_last)
  ASSERT_EQ(expected.size(), 6u);
  // Each sample is the source's transform at the sample's counters of the epoch's stream.
  for (size_t k = 0; k < 3; ++k) {
    const int64_t row = expected[4].indices[k];
    std::vector<float> sample(3 * 20 * 20);
    const uint64_t key = derive_seed(8, 1, 0x4155474D);  // epoch 1, 'AUGM'
    Generator gen(key);
    gen.set_state(key, uint64_t(row) * d.source->draws_per_sample());
    d.source->load(row, SampleMode::Train, gen, sample.data());
    const std::vector<float> batch = expected[4].images.to_vector<float>();
    EXPECT_EQ(
        std::vector<float>(batch.begin() + long(k * sample.size()), batch.begin() + long((k + 1) * sample.size())),
        sample);
  }
  for (const int64_t threads : {2, 4}) {
    lo.decode_threads = threads;
    Loader many(d, lo);
    std::vector<Batch> got = whole_epoch(many);
    const std::vector<Batch> got1 = whole_epoch(many);
    got.insert(got.end(), got1.begin(), got1.end());
    expect_same_batches(got, expected);
  }
  LoaderState saved;
  {
    Loader interrupted(d, lo);
    whole_epoch(interrupted);
    Batch b;
    ASSERT_TRUE(interrupted.next(b));
    saved = interrupted.state();
  }
  Loader resumed(d, lo);
  resumed.restore(saved);
  expect_same_batches(whole_epoch(resumed), std::vector<Batch>(expected.begin() + 4, expected.end()));
}

TEST(JpegDatasets, LazySplitsAndSelectionsComposeIndexMaps) {
  TempFolder tmp;
  write_tiny(tmp.path);
  const Dataset full = load_tiny_imagenet(tmp.path.string(), Split::Train);
  const TrainValidationSplit split = split_train_validation(full, 4, 2);
  EXPECT_EQ(split.train.size(), 6);
  EXPECT_EQ(split.validation.size(), 4);
  EXPECT_EQ(split.train.source, full.source);
  EXPECT_FALSE(split.train.images.defined());
  // The same rows as an in-memory dataset of the same size gets (pixel i of sample i = i identifies the rows).
  Dataset in_memory;
  in_memory.name = "numbered";
  in_memory.num_classes = 1;
  in_memory.images = Tensor::empty({10, 1, 1, 1}, DType::U8);
  in_memory.labels = Tensor::zeros({10}, DType::I32);
  for (int64_t i = 0; i < 10; ++i) in_memory.images.data<uint8_t>()[i] = uint8_t(i);
  const std::vector<uint8_t> in_memory_rows =
      split_train_validation(in_memory, 4, 2).validation.images.to_vector<uint8_t>();
  std::vector<int64_t> rows;
  for (int64_t k = 0; k < split.validation.size(); ++k) rows.push_back(split.validation.source_index(k));
  EXPECT_EQ(rows, std::vector<int64_t>(in_memory_rows.begin(), in_memory_rows.end()));
  const Dataset picked = select_samples(split.validation, {3, 1});
  ASSERT_EQ(picked.size(), 2);
  EXPECT_EQ(picked.source_index(0), rows[3]);
  EXPECT_EQ(picked.source_index(1), rows[1]);
  EXPECT_EQ(picked.labels.data<int32_t>()[0], full.labels.data<int32_t>()[rows[3]]);
  // Its samples are the full dataset's samples at those rows.
  Loader loader(picked, LoaderOptions::evaluation(2));
  Batch b;
  ASSERT_TRUE(loader.next(b));
  const std::vector<float> v = b.images.to_vector<float>();
  const std::vector<float> first = load_sample(full, rows[3], SampleMode::Evaluate);
  EXPECT_EQ(std::vector<float>(v.begin(), v.begin() + long(first.size())), first);
  EXPECT_EQ(picked.height(), 64);
  EXPECT_EQ(picked.sample_layout().time_steps, 0);
  check_dataset(picked, "picked");
}

}  // namespace
}  // namespace spikegrad::testing
