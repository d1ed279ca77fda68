"""The tfds builders: image folders (CelebA-HQ, Places2, Paris StreetView, any) and the demo set."""

import glob
import io
import logging
import os

import ml_collections
import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from flowfill_jax import resize
from flowfill_jax.datasets import photos
from flowfill_jax.errors import UserError
from flowfill_jax.image_io import read_image

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


def _features(with_box: bool = False):
  """PNG bytes and the source's name; `with_box`: the crop's (y0, x0, y1, x1) in its photo."""
  features = {"png": tfds.features.Tensor(shape=(None,), dtype=np.uint8, encoding="bytes"),
              "name": tfds.features.Text()}
  if with_box:
    features["box"] = tfds.features.Tensor(shape=(4,), dtype=np.int32)
  return tfds.features.FeaturesDict(features)


def _read_rgb(path: str) -> np.ndarray | None:
  """The image as uint8 RGB, read as the `sample` command reads one (EXIF orientation, 16-bit
  and float by their range, transparency over white), or None with a warning naming it."""
  try:
    return np.round(read_image(path) * 255).astype(np.uint8)
  except UserError as e:
    log.warning("skipping: %s", e)
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
  MANUAL_DOWNLOAD_INSTRUCTIONS = "A local folder laid out as docs/data.md says."
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
      pixels = _read_rgb(path)
      if pixels is None:
        skipped += 1
        continue
      if self.STORE_SIZE is not None:
        pixels = resize.square(pixels, self.STORE_SIZE)
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


def demo_photos() -> dict[str, np.ndarray]:
  """Every real colour photograph the installed dependencies ship, loaded with no network.

  scikit-image 0.26 (`skimage.data`): astronaut, coffee, chelsea (`cat` is the same
  file), rocket, the left view of stereo_motorcycle (the right view is the same scene
  shifted, so its pixels would leak across splits), immunohistochemistry (microscope),
  hubble_deep_field (telescope), retina (fundus camera). scikit-learn
  (`load_sample_images`): china, flower. Left out: skimage's grayscale, binary and
  synthetic images (camera, moon, brick, colorwheel, logo, …), those that need a pooch
  download (skin, lily, eagle, kidney, …; also scipy.datasets.face), and images that
  only optional test extras install (pyiqa's calibration photos): the demo set must be
  the same on every install. matplotlib, which ships sample photos, is not installed.
  """
  from skimage import data
  from sklearn.datasets import load_sample_images
  china, flower = load_sample_images().images
  return {"astronaut": data.astronaut(), "coffee": data.coffee(), "chelsea": data.chelsea(),
          "immunohistochemistry": data.immunohistochemistry(),
          "hubble_deep_field": data.hubble_deep_field(), "retina": data.retina(),
          "motorcycle": data.stereo_motorcycle()[0], "china": china,
          "flower": flower, "rocket": data.rocket()}


# Kept out of training entirely: the two photos least like the rest (a close-up of petals;
# a rocket against a plain sky), and the old (v1) test split, so test_ood's crops are the
# first 200 of v1's test crops and its numbers compare with the README's earlier ones.
DEMO_OOD_PHOTOS = ("flower", "rocket")
DEMO_CROP_SIZE = 128
DEMO_COUNTS = {"train": 4000, "validation": 200, "test": 400, "test_ood": 200}
_DEMO_SEEDS = {"train": (0, 5), "validation": (2, 4), "test": (1, 4),
               "test_ood": (0, 4)}  # test_ood: v1's test seed
HELD_OUT_SPLITS = ("validation", "test")


def demo_holdout(shape: tuple[int, ...], split: str = "test") -> tuple[int, int, int, int]:
  """Box (y0, x0, y1, x1) of a training photo that only the split `split` sees.

  test: a square of a fifth of the photo's area at the middle of its right edge; validation:
  a tenth, at the middle of its left edge (each at least one crop wide). Square, so held-out
  crops can be as large as most training crops; at an edge, so the training crops keep an
  unbroken band around it.
  """
  h, w = shape[:2]
  share = 5 if split == "test" else 10
  side = min(max(round((h * w / share) ** 0.5), DEMO_CROP_SIZE), h, w)
  y0 = (h - side) // 2
  return (y0, w - side, y0 + side, w) if split == "test" else (y0, 0, y0 + side, side)


def _disjoint(box, other) -> bool:
  return box[2] <= other[0] or other[2] <= box[0] or box[3] <= other[1] or other[3] <= box[1]


def demo_crops(shapes: dict, split: str) -> list[tuple[str, tuple[int, int, int, int]]]:
  """The demo split's crops as (photo name, box (y0, x0, y1, x1)): a pure function of shapes.

  Sides are drawn between 128 and half the photo's short side + 64 (several scales),
  photos in turn. train: anywhere outside each training photo's two `demo_holdout` boxes (a
  side that fits nowhere there is redrawn); validation, test: inside their box (sides capped
  at its size); test_ood: anywhere in the `DEMO_OOD_PHOTOS`, the rule of the v1 test split.
  """
  size = DEMO_CROP_SIZE
  ood = split == "test_ood"
  names = sorted(n for n in shapes if (n in DEMO_OOD_PHOTOS) == ood)
  rng = np.random.default_rng(_DEMO_SEEDS[split])
  crops = []
  for i in range(DEMO_COUNTS[split]):
    name = names[i % len(names)]
    h, w = shapes[name][:2]
    top = min(h, w) // 2 + size // 2
    if split in HELD_OUT_SPLITS:
      y0, x0, y1, x1 = demo_holdout((h, w), split)
      side = int(rng.integers(size, min(top, y1 - y0) + 1))
      y, x = int(rng.integers(y0, y1 - side + 1)), int(rng.integers(x0, x1 - side + 1))
    elif split == "train":
      held = [demo_holdout((h, w), s) for s in HELD_OUT_SPLITS]
      while True:
        side = min(int(rng.integers(size, top + 1)), h, w)
        for _ in range(20):
          y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
          if all(_disjoint((y, x, y + side, x + side), box) for box in held):
            break
        else:
          continue
        break
    else:
      side = min(int(rng.integers(size, top + 1)), h, w)
      y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crops.append((name, (y, x, y + side, x + side)))
  return crops


class Demo(tfds.core.GeneratorBasedBuilder):
  """Offline demo set: 128² crops at several scales of the ten photos `demo_photos` lists.

  A demo, not a benchmark. `train` (4,000 crops), `validation` (200) and `test` (400) come
  from the same eight photos (astronaut, chelsea, china, coffee, hubble_deep_field,
  immunohistochemistry, motorcycle, retina) but never share a pixel: validation and test crops
  lie inside each photo's two held-out squares (`demo_holdout`), train crops outside both.
  Settings are chosen on validation. `test_ood` (200) is cut from two photos kept out of
  training (flower, rocket) and measures generalisation to unseen photos. Each record keeps
  its photo's name and its crop box in that photo.
  """

  VERSION = tfds.core.Version("3.0.0")
  RELEASE_NOTES = {
      "1.0.0": "train on 8 photos, test on 2 others.",
      "2.0.0": "test = held-out regions of the training photos; the 2 others are test_ood.",
      "3.0.0": "validation = other held-out regions (left edge); test and test_ood as in 2.0.0.",
  }
  SIZE = DEMO_CROP_SIZE

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=_features(with_box=True))

  def _split_generators(self, dl_manager):
    photos = demo_photos()
    shapes = {name: photo.shape for name, photo in photos.items()}
    return {split: self._generate_examples(photos, demo_crops(shapes, split))
            for split in DEMO_COUNTS}

  def _generate_examples(self, photos, crops):
    for i, (name, (y0, x0, y1, x1)) in enumerate(crops):
      pixels = resize.image(photos[name][y0:y1, x0:x1], self.SIZE)
      yield f"{name}_{i}", {"png": encode_png(pixels), "name": name,
                            "box": np.array([y0, x0, y1, x1], np.int32)}


class Photos(tfds.core.GeneratorBasedBuilder):
  """The offline photo corpus (`datasets/photos.py` lists its 43 photographs and licences).

  `train`: the 31 training photographs whole, at a short side of 512 (random crops at several
  scales are cut at load time, `input_pipeline`); `validation` (200) and `test` (400): fixed
  128² crops of 4 and 8 other photographs that no training crop ever comes from.
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "43 photographs: 31 train, 4 validation, 8 test (whole photos)."}

  def _info(self):  # train records' box is the whole photo
    return tfds.core.DatasetInfo(builder=self, features=_features(with_box=True))

  def _split_generators(self, dl_manager):
    return {split: self._generate_examples(split) for split in ("train", "validation", "test")}

  def _generate_examples(self, split):
    chosen = photos.load_photos(photos.split_names(split))
    if split == "train":
      for p in chosen:
        h, w = p.pixels.shape[:2]
        yield p.name, {"png": encode_png(p.pixels), "name": p.name,
                       "box": np.array([0, 0, h, w], np.int32)}
      return
    for i, (p, (y0, x0, y1, x1)) in enumerate(photos.eval_crops(chosen, split)):
      pixels = resize.image(p.pixels[y0:y1, x0:x1], photos.EVAL_CROP_SIZE)
      yield f"{p.name}_{i}", {"png": encode_png(pixels), "name": p.name,
                              "box": np.array([y0, x0, y1, x1], np.int32)}


BUILDERS = {"celeba_hq": CelebaHq, "places2": Places2, "paris_streetview": ParisStreetview,
            "image_folder": ImageFolder, "demo": Demo, "photos": Photos}
# Built from files the package can reach (bundled photos, Debian packages): no manual_dir.
SELF_CONTAINED = ("demo", "photos")


class _DecodedSource:
  """Random access to decoded uint8 images over a tfds array_record data source.

  A split of at most `CACHED_RECORDS` records (whole photographs that many crops are cut
  from) keeps its decoded images: decoding a large PNG per crop would starve the model.
  """

  CACHED_RECORDS = 64

  def __init__(self, source, name: str, split: str):
    self._source, self.name, self.split = source, name, split
    self._cache: dict[int, np.ndarray] | None = {} if len(source) <= self.CACHED_RECORDS else None

  def __len__(self):
    return len(self._source)

  def __getitem__(self, index):
    index = int(index)
    if self._cache is None:
      return {"image": decode_png(self._source[index]["png"])}
    if index not in self._cache:
      self._cache[index] = decode_png(self._source[index]["png"])
    return {"image": self._cache[index]}


def load(name: str, split: str, *, data_dir: str | None = None,
         manual_dir: str | None = None) -> _DecodedSource:
  """Prepare (first use only) and open a split as a random-access source of decoded images."""
  if name not in BUILDERS:
    raise DatasetError(f"unknown dataset {name!r}: expected one of {sorted(BUILDERS)}")
  data_dir = data_dir or default_data_dir()
  builder = BUILDERS[name](data_dir=data_dir, file_format="array_record")
  if not builder.is_prepared():
    if name not in SELF_CONTAINED and not manual_dir:
      raise DatasetError(f"{name} is not prepared in {data_dir} and no manual_dir was given: "
                         f"pass --config.data.manual_dir=FOLDER holding "
                         f"{BUILDERS[name].layout()}")
    if name not in SELF_CONTAINED and not os.path.isdir(str(manual_dir)):
      raise DatasetError(f"{name}: manual_dir {manual_dir} is not a folder; expected it to "
                         f"hold {BUILDERS[name].layout()}")
    config = tfds.download.DownloadConfig(manual_dir=manual_dir)
    builder.download_and_prepare(download_config=config)
  splits = list(builder.info.splits.keys())
  if split not in splits:
    raise DatasetError(f"{name} has no split {split!r} (it has {sorted(splits)}) in {data_dir}")
  return _DecodedSource(builder.as_data_source(split=split), name, split)


def spread_images(data_config: ml_collections.ConfigDict, num: int) -> list[np.ndarray]:
  """`num` images spread evenly over a run's evaluation split, at its image size (uint8):
  the examples the web demo and an exported model offer."""
  source = load(data_config.name, data_config.eval_split, data_dir=data_config.get("data_dir"),
                manual_dir=data_config.get("manual_dir"))
  size = data_config.image_size
  out = []
  for i in np.unique(np.linspace(0, len(source) - 1, num).astype(int)):
    image = source[i]["image"]
    out.append(resize.square(image, size))
  return out
