"""The tfds builders: image folders (CelebA-HQ, Places2, Paris StreetView, any) and the demo set."""

import glob
import io
import logging
import os

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image, UnidentifiedImageError

from flowfill_jax.errors import UserError

log = logging.getLogger("flowfill_jax")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class DatasetError(UserError):
  """A dataset that is not where it should be, or holds nothing usable."""


def default_data_dir() -> str:
  return os.environ.get("FLOWFILL_DATA_DIR", os.path.expanduser("~/tensorflow_datasets"))


def encode_png(image: np.ndarray) -> np.ndarray:
  buf = io.BytesIO()
  Image.fromarray(image).save(buf, format="PNG", compress_level=1)
  return np.frombuffer(buf.getvalue(), np.uint8)


def decode_png(data: np.ndarray) -> np.ndarray:
  return np.asarray(Image.open(io.BytesIO(np.asarray(data).tobytes())).convert("RGB"))


def square_resize(image: Image.Image, size: int) -> np.ndarray:
  """Centre crop to a square, then antialiased (box/bicubic) resize to size×size."""
  w, h = image.size
  s = min(w, h)
  image = image.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
  return np.asarray(image.resize((size, size), Image.BICUBIC, reducing_gap=2.0))


def _features():
  return tfds.features.FeaturesDict({
      "png": tfds.features.Tensor(shape=(None,), dtype=np.uint8, encoding="bytes"),
      "name": tfds.features.Text(),
  })


def _read_rgb(path: str) -> Image.Image | None:
  """The image, or None (with a warning naming it) when the file is not a readable image."""
  try:
    img = Image.open(path)
    img.load()
    return img.convert("RGB")
  except (UnidentifiedImageError, OSError, ValueError) as e:
    log.warning("skipping %s: not a readable image (%s)", path, e)
    return None


def list_images(folder: str) -> list[str]:
  return sorted(p for p in glob.glob(os.path.join(folder, "**", "*"), recursive=True)
                if p.lower().endswith(IMAGE_EXTENSIONS))


class FolderBuilder(tfds.core.GeneratorBasedBuilder):
  """Base: every split is a folder of images (or a split file listing them) under manual_dir.

  `SPLITS` maps a split name to a path relative to manual_dir: a folder, or a
  text file with one relative image path per line. `STORE_SIZE` None keeps the
  full image (Paris StreetView: random 256 crops happen at load time).
  """

  VERSION = tfds.core.Version("1.0.0")
  MANUAL_DOWNLOAD_INSTRUCTIONS = "A local folder laid out as README.md's Data section says."
  SPLITS: dict = {}
  STORE_SIZE: int | None = 256

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=_features())

  def _split_generators(self, dl_manager):
    root = dl_manager.manual_dir
    if root is None or not os.path.isdir(root):
      raise DatasetError(f"{self.name}: manual_dir {root} is not a folder; expected "
                         f"{self.layout()}")
    gens = {}
    for split, rel in self.SPLITS.items():
      path = os.path.join(root, rel)
      if os.path.isdir(path):
        files = list_images(path)
      elif os.path.isfile(path):
        base = os.path.dirname(path)
        files = [os.path.join(base, line.strip()) for line in open(path) if line.strip()]
      else:
        continue
      gens[split] = self._generate_examples(files, split)
    if not gens:
      raise DatasetError(f"{self.name}: no split found in {root}; expected {self.layout()}")
    return gens

  @classmethod
  def layout(cls) -> str:
    return ", ".join(f"{rel} ({split})" for split, rel in cls.SPLITS.items())

  def _generate_examples(self, files, split):
    valid = skipped = 0
    for path in files:
      img = _read_rgb(path)
      if img is None:
        skipped += 1
        continue
      pixels = np.asarray(img) if self.STORE_SIZE is None else square_resize(img, self.STORE_SIZE)
      valid += 1
      yield path, {"png": encode_png(pixels), "name": os.path.basename(path)}
    if skipped:
      log.warning("%s/%s: skipped %d unreadable file(s) of %d", self.name, split, skipped,
                  len(files))
    if not valid:
      raise DatasetError(f"{self.name}/{split}: no readable image among {len(files)} file(s)")


class CelebaHq(FolderBuilder):
  """CelebA-HQ (30k faces) with the usual train/val/test file lists (as in ICT and LaMa)."""
  SPLITS = {"train": "train", "validation": "val", "test": "test"}


class Places2(FolderBuilder):
  """Places365-Challenge 256²: `data_256/` for training, `val_256/` for testing (paper §4.1)."""
  SPLITS = {"train": "data_256", "validation": "val_256"}


class ParisStreetview(FolderBuilder):
  """Paris StreetView at full size (936×537); 256 crops are cut at load time."""
  SPLITS = {"train": "paris_train_original", "test": "paris_eval_gt"}
  STORE_SIZE = None


class ImageFolder(FolderBuilder):
  """Any folder: `train/` and `test/` (or `train.txt` / `test.txt` lists) under manual_dir."""
  SPLITS = {"train": "train", "test": "test", "validation": "validation"}

  def _split_generators(self, dl_manager):
    root = dl_manager.manual_dir
    for split in ("train", "test", "validation"):
      if os.path.isfile(os.path.join(root or "", f"{split}.txt")):
        self.SPLITS = dict(self.SPLITS, **{split: f"{split}.txt"})
    return super()._split_generators(dl_manager)


def _demo_photos():
  """The demo's source photographs: the test split's photos are not in training."""
  from skimage import data
  from sklearn.datasets import load_sample_images
  china, flower = load_sample_images().images
  motorcycle = data.stereo_motorcycle()[0]
  train = {"astronaut": data.astronaut(), "coffee": data.coffee(), "chelsea": data.chelsea(),
           "immunohistochemistry": data.immunohistochemistry(),
           "hubble_deep_field": data.hubble_deep_field(), "retina": data.retina(),
           "motorcycle": motorcycle, "china": china}
  test = {"flower": flower, "rocket": data.rocket()}
  return {"train": train, "test": test}


class Demo(tfds.core.GeneratorBasedBuilder):
  """Offline demo set: 128² crops at several scales of ten bundled photographs.

  A demo, not a benchmark: train crops come from eight photos (astronaut, coffee,
  chelsea, immunohistochemistry, hubble_deep_field, retina, motorcycle, china),
  test crops from two others (scikit-learn's flower, scikit-image's rocket).
  """

  VERSION = tfds.core.Version("1.0.0")
  CROPS = {"train": 4000, "test": 400}
  SIZE = 128

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=_features())

  def _split_generators(self, dl_manager):
    photos = _demo_photos()
    return {split: self._generate_examples(photos[split], self.CROPS[split], split)
            for split in ("train", "test")}

  def _generate_examples(self, photos, count, split):
    rng = np.random.default_rng([0, len(split)])
    names = sorted(photos)
    for i in range(count):
      name = names[i % len(names)]
      photo = photos[name]
      h, w = photo.shape[:2]
      side = int(rng.integers(self.SIZE, min(h, w) // 2 + self.SIZE // 2 + 1))
      side = min(side, h, w)
      y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
      crop = Image.fromarray(photo[y:y + side, x:x + side])
      pixels = np.asarray(crop.resize((self.SIZE, self.SIZE), Image.BICUBIC, reducing_gap=2.0))
      yield f"{name}_{i}", {"png": encode_png(pixels), "name": name}


BUILDERS = {"celeba_hq": CelebaHq, "places2": Places2, "paris_streetview": ParisStreetview,
            "image_folder": ImageFolder, "demo": Demo}


class _DecodedSource:
  """Random access to decoded uint8 images over a tfds array_record data source."""

  def __init__(self, source, name: str, split: str):
    self._source, self.name, self.split = source, name, split

  def __len__(self):
    return len(self._source)

  def __getitem__(self, index):
    return {"image": decode_png(self._source[int(index)]["png"])}


def load(name: str, split: str, *, data_dir: str | None = None, manual_dir: str | None = None):
  """Prepare (first use only) and open a split as a random-access source of decoded images."""
  if name not in BUILDERS:
    raise DatasetError(f"unknown dataset {name!r}: expected one of {sorted(BUILDERS)}")
  data_dir = data_dir or default_data_dir()
  builder = BUILDERS[name](data_dir=data_dir, file_format="array_record")
  if not builder.is_prepared():
    if name != "demo" and manual_dir is None:
      raise DatasetError(f"{name} is not prepared in {data_dir} and no manual_dir was given: "
                         f"pass --config.data.manual_dir=FOLDER holding "
                         f"{BUILDERS[name].layout()}")
    if name != "demo" and not os.path.isdir(manual_dir):
      raise DatasetError(f"{name}: manual_dir {manual_dir} is not a folder; expected it to "
                         f"hold {BUILDERS[name].layout()}")
    config = tfds.download.DownloadConfig(manual_dir=manual_dir)
    builder.download_and_prepare(download_config=config)
  splits = list(builder.info.splits.keys())
  if split not in splits:
    raise DatasetError(f"{name} has no split {split!r} (it has {sorted(splits)}) in {data_dir}")
  return _DecodedSource(builder.as_data_source(split=split), name, split)
