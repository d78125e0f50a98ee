// Tiny-ImageNet and ImageNet from their folders of JPEG files, as lazy datasets (datasets/dataset.h): the scan
// lists the files and labels; pixels are decoded per sample by a JpegFileSource (datasets/jpeg_source.h) on the
// loader's worker threads. Every list is sorted, so a dataset's order depends only on the files present.
//
// Tiny-ImageNet (the extracted tiny-imagenet-200; 64x64, 200 classes):
//   <root>/wnids.txt                    one wnid per line; label = line number (0-based)
//   <root>/train/<wnid>/images/*.JPEG   Split::Train: classes in wnids.txt order, files sorted by name
//   <root>/val/images/*.JPEG + <root>/val/val_annotations.txt (tab-separated: file, wnid, bbox...)
//                                       Split::Test. The official test/ folder has no labels, so the labelled
//                                       val set is the test split (as in the papers); files sorted by name.
//   Normalisation: Tiny-ImageNet's mean (0.4802, 0.4481, 0.3975), std (0.2770, 0.2691, 0.2821) (spec 4.3).
// ImageNet (ILSVRC-2012 as most users arrange it):
//   <root>/train/<wnid>/*.JPEG          Split::Train; label = index of the wnid among the sorted class folders of
//                                       train/ (torchvision's ImageFolder order), also for the test split
//   <root>/val/<wnid>/*.JPEG            Split::Test, class folders (each must be a class of train/), or
//   <root>/val/*.JPEG + a label file    lines "<file> <wnid or 0-based class index>"; the file is
//                                       val_label_file, else <root>/val_labels.txt; used when val/ has no class
//                                       folders or val_label_file is given. Files sorted by name.
//   Normalisation: ImageNet's mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).
// Files: names ending .jpg/.jpeg in any case; other files (READMEs, bounding-box lists) are ignored.
//
// Errors (spikegrad::Error naming the path): a missing folder or file, a class folder with no images, a label
// file line naming an unknown class or malformed, a listed file that is missing, a duplicate listing. An
// unreadable JPEG fails when the loader reaches it, naming the file (the default scan opens no file, so listing
// ImageNet takes seconds). With skip_corrupt, the scan instead decodes every file once (at 1/8 scale: all of the
// entropy-coded data is still read, so truncation and corrupt data show as in a full decode) on scan_threads
// threads, leaves the failures out and lists them in the source's skipped_files() ("path: reason"), for the
// caller to report the count; a later failure of a file that passed is still an error, so an epoch is never
// shortened silently. A class whose every image is skipped is an error.
#pragma once
#include <cstdint>
#include <string>

#include "datasets/dataset.h"
#include "datasets/jpeg_source.h"

namespace spikegrad {

struct JpegDatasetOptions {
  int64_t image_size = 0;  // output side S; 0 = the dataset's: ImageNet 224, Tiny-ImageNet 64
  // Evaluation Resize (shorter side) of the resized-crop recipe; 0 = ImageNet round(S * 256 / 224) (256 at S = 224),
  // Tiny-ImageNet S (its images are square: Resize(S), the TMI reference's evaluation).
  int64_t resize_size = 0;
  std::string recipe;  // "" = the dataset's: ImageNet "resized-crop", Tiny-ImageNet "pad-crop" (jpeg_source.h)
  ResizedCropParams resized_crop;  // RandomResizedCrop scale (0.08, 1) and ratio (3/4, 4/3)
  int64_t crop_padding = 4;        // pad-crop training: RandomCrop padding
  bool dct_scaling = true;         // decode at a reduced DCT scale where the transform shrinks anyway
  bool skip_corrupt = false;       // validate every file at scan time and leave the unreadable ones out
  std::string val_label_file;      // ImageNet flat val/: "" = <root>/val_labels.txt
  int64_t scan_threads = 0;        // skip_corrupt validation threads; 0 = min(hardware threads, 8)
};

// "resized-crop" | "pad-crop"; anything else throws, listing both.
JpegRecipe parse_jpeg_recipe(const std::string& name);

// The transform `options` give for a dataset ("tiny-imagenet" or "imagenet"), defaults resolved and checked.
JpegTransform resolve_jpeg_transform(const std::string& dataset, const JpegDatasetOptions& options);

Dataset load_tiny_imagenet(const std::string& root, Split split, const JpegDatasetOptions& options = {});
Dataset load_imagenet(const std::string& root, Split split, const JpegDatasetOptions& options = {});

}  // namespace spikegrad
