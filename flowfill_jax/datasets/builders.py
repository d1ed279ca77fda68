"""tfds builders over a local folder (`manual_dir`): CelebA-HQ, Places2, Paris StreetView, any.

None of these can be downloaded here, so each reads the public release as it
unpacks, laid out as its MANUAL_DOWNLOAD_INSTRUCTIONS say, and stores it as
array_record, read back with no TensorFlow. A split is a folder of images
(searched recursively) or, if present, a list file selecting a subset: one path
a line, relative to manual_dir or to the split's folder, first token only (so
Places365's own `path label` lists work as they are). Unreadable files are skipped with a
warning naming each; their count per split is logged and kept in the prepared
dataset's metadata (`builder.info.metadata["skipped_files"]`).

Images are stored as 256×256 RGB: centre crop to a square, antialiased bicubic
resize (`files.square_resize`); files that already are RGB JPEG/PNG at 256² are
stored byte for byte. Paris StreetView is stored at full size (936×537): the
pipeline cuts 256² crops at load time, as the paper does.
"""

import dataclasses
import hashlib
import os
import re

import tensorflow_datasets as tfds

from flowfill_jax.datasets.errors import DataNotFoundError
from flowfill_jax.datasets.files import list_images, log, open_image, to_store

__all__ = ["CelebaHq", "ImageFolder", "Places2", "ParisStreetview", "list_images"]


@dataclasses.dataclass(frozen=True)
class Split:
  folder: str  # relative to manual_dir
  list_file: str  # relative to manual_dir; used instead of the whole folder when it exists


def _list_entry(line: str, root: str, folder: str) -> str:
  """A list file's path: relative to manual_dir, else to the split's folder."""
  rel = line.split()[0]
  path = os.path.join(root, rel)
  return path if os.path.exists(path) else os.path.join(folder, rel.lstrip("/"))


def read_list_file(path: str, root: str, folder: str) -> list[str]:
  with open(path) as f:
    return [_list_entry(line, root, folder) for line in f if line.strip()]


def _open_listed(path: str):
  """The image, or None with a warning naming the file (missing, or not a readable image)."""
  if not os.path.isfile(path):
    log.warning("skipping %s: listed but missing", path)
    return None
  return open_image(path)


class FolderBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base class: the splits of `SPLITS` found under manual_dir, each one image per example."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  SPLITS: dict[str, Split] = {}
  STORE_SIZE: int | None = 256  # None: full size

  def _info(self):
    size = self.STORE_SIZE
    image = tfds.features.Image(shape=(size, size, 3) if size else (None, None, 3))
    return tfds.core.DatasetInfo(
        builder=self,
        description=self.__doc__,
        features=tfds.features.FeaturesDict({"image": image, "file_name": tfds.features.Text()}),
        metadata=tfds.core.MetadataDict(skipped_files={}),
    )

  def split_files(self, root: str) -> dict[str, list[str]]:
    """The files of every split present under `root` (a list file wins over its folder)."""
    found = {}
    for split, layout in self.SPLITS.items():
      list_file, folder = os.path.join(root, layout.list_file), os.path.join(root, layout.folder)
      if os.path.isfile(list_file):
        found[split] = read_list_file(list_file, root, folder)
      elif os.path.isdir(folder):
        found[split] = list_images(folder)
    return found

  def _split_generators(self, dl_manager):
    root = os.fspath(dl_manager.manual_dir)
    found = self.split_files(root)
    if not found:
      raise DataNotFoundError(f"{self.name}: no split found in {root}; expected "
                              f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
    for split, files in found.items():
      if not files:
        layout = self.SPLITS[split]
        raise DataNotFoundError(f"{self.name}/{split}: no image files (png, jpg, bmp, webp, "
                                f"tif) in {root}/{layout.folder} or {layout.list_file}")
    return {split: self._generate_examples(files, split, root) for split, files in found.items()}

  def _generate_examples(self, files, split, root):
    skipped = []
    for path in files:
      rel = os.path.relpath(path, root)
      img = _open_listed(path)
      if img is None:
        skipped.append(rel)
        continue
      yield rel, {"image": to_store(path, img, self.STORE_SIZE), "file_name": rel}
    self.info.metadata["skipped_files"][split] = skipped
    if skipped:
      log.warning("%s/%s: skipped %d unreadable or missing file(s) of %d", self.name, split,
                  len(skipped), len(files))
    if len(skipped) == len(files):
      raise DataNotFoundError(f"{self.name}/{split}: none of the {len(files)} file(s) in "
                              f"{root} is a readable image")


class CelebaHq(FolderBuilder):
  """CelebA-HQ: 30,000 faces, with CelebA's original train/val/test split (paper §4.1)."""

  SPLITS = {"train": Split("train", "train.txt"), "validation": Split("val", "val.txt"),
            "test": Split("test", "test.txt")}
  MAPPING = "CelebA-HQ-to-CelebA-mapping.txt"
  PARTITION = "list_eval_partition.txt"
  IMAGES = "CelebA-HQ-img"
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      f"the CelebAMask-HQ release ({IMAGES}/0.jpg…29999.jpg, {MAPPING}) with CelebA's "
      f"{PARTITION} (the original split, about 24k / 3k / 3k), or train/ val/ test/ folders, "
      "or train.txt val.txt test.txt lists")

  def split_files(self, root: str) -> dict[str, list[str]]:
    if all(os.path.exists(os.path.join(root, p)) for p in (self.MAPPING, self.PARTITION)):
      return self.original_split(root)
    return super().split_files(root)

  def original_split(self, root: str) -> dict[str, list[str]]:
    """CelebA-HQ image `idx` is CelebA's `orig_file`, whose partition is 0/1/2."""
    with open(os.path.join(root, self.PARTITION)) as f:
      partition = dict(line.split()[:2] for line in f if line.strip())
    names = {"0": "train", "1": "validation", "2": "test"}
    found = {name: [] for name in names.values()}
    with open(os.path.join(root, self.MAPPING)) as f:
      for line in f.readlines()[1:]:  # header: idx orig_idx orig_file
        if line.strip():
          idx, _, orig_file = line.split()[:3]
          if orig_file not in partition:
            raise DataNotFoundError(f"{self.name}: {orig_file} (CelebA-HQ image {idx}) is not "
                                    f"in {root}/{self.PARTITION}")
          found[names[partition[orig_file]]].append(os.path.join(root, self.IMAGES, f"{idx}.jpg"))
    return found


class Places2(FolderBuilder):
  """Places365-Challenge at 256² (`data_256`) for training, its `val_256` for validation."""

  SPLITS = {"train": Split("data_256", "train.txt"), "validation": Split("val_256", "val.txt"),
            "test": Split("test_256", "test.txt")}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "data_256/ (train: the challenge or standard 256² archive, a/airfield/00000001.jpg…), "
      "val_256/ (validation, 36,500), optionally test_256/; train.txt val.txt test.txt select "
      "subsets (e.g. places365_val.txt copied to val.txt)")


class ParisStreetview(FolderBuilder):
  """Paris StreetView at full size (936×537): 256² crops are cut at load time (paper §4.1)."""

  SPLITS = {"train": Split("paris_train_original", "train.txt"),
            "test": Split("paris_eval_gt", "test.txt")}
  STORE_SIZE = None
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "paris_train_original/ (14,900 train images) and paris_eval_gt/ (100 test images)")


class ImageFolder(FolderBuilder):
  """Any folder of images: train/ val/ test/ subfolders or lists, else every image as train.

  Prepared once per folder: `config_name(manual_dir)` names the copy after the folder's path.
  """

  SPLITS = {"train": Split("train", "train.txt"), "validation": Split("val", "val.txt"),
            "test": Split("test", "test.txt")}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "images: train/ val/ test/ subfolders (or train.txt val.txt test.txt lists), else every "
      "image under it as the train split")

  @classmethod
  def get_builder_config(cls, name, version=None):
    """Every name is a config: one per folder (so tfds does not warn of a custom config)."""
    del version  # one version
    return tfds.core.BuilderConfig(name=name)

  def split_files(self, root: str) -> dict[str, list[str]]:
    return super().split_files(root) or {"train": list_images(root)}


def config_name(manual_dir: str) -> str:
  """An image_folder config per folder: its base name and a hash of its absolute path."""
  path = os.path.abspath(manual_dir)
  base = re.sub(r"[^a-z0-9]+", "_", os.path.basename(path.rstrip("/")).lower()).strip("_")
  return f"{base or 'root'}_{hashlib.sha1(path.encode()).hexdigest()[:8]}"
