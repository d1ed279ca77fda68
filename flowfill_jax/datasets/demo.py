"""The demo set: crops of the colour photographs bundled with scikit-image and scikit-learn.

Nothing to download, so the demo trains anywhere. A demo, not a benchmark:
every crop comes from one of ten photographs. Train crops are cut from eight
(TRAIN_PHOTOS), test crops from two others (TEST_PHOTOS), so the test split
shows the model scenes it has never seen. Crops are 128² (the demo trains at
64²), cut at several scales (side log-uniform between 128 px and the photo's
short side, resized with antialiasing), deterministically from a fixed seed per
split. Near-uniform crops (dark sky of the Hubble field, the retina's black
surround) are redrawn. scikit-image photos that need a download (pooch) are
not used.
"""

import dataclasses

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from flowfill_jax.datasets.files import png_bytes, resize

TRAIN_PHOTOS = ("astronaut", "chelsea", "china", "coffee", "hubble_deep_field",
                "immunohistochemistry", "motorcycle", "retina")
TEST_PHOTOS = ("flower", "rocket")
SIZE = 128
MIN_STD = 8.0  # grey-level standard deviation below which a crop counts as blank
SPLIT_SEEDS = {"train": 0, "test": 1}


def photo(name: str) -> np.ndarray:
  """One bundled photograph, uint8 HxWx3 (scikit-learn's china and flower, else scikit-image)."""
  if name in ("china", "flower"):
    from sklearn.datasets import load_sample_image
    return load_sample_image(f"{name}.jpg")
  from skimage import data
  if name == "motorcycle":
    return data.stereo_motorcycle()[0]  # the left view; the right one is nearly the same
  return getattr(data, name)()


def random_crop(rng: np.random.Generator, img: Image.Image) -> Image.Image:
  """A SIZE² crop at a random scale and place, redrawn (up to 20 times) while near-uniform."""
  w, h = img.size
  for _ in range(20):
    side = int(round(np.exp(rng.uniform(np.log(SIZE), np.log(min(w, h))))))
    x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
    crop = resize(img.crop((x, y, x + side, y + side)), SIZE, SIZE)
    if np.asarray(crop.convert("L")).std() >= MIN_STD:
      break
  return crop


@dataclasses.dataclass
class DemoConfig(tfds.core.BuilderConfig):
  train_crops: int = 0
  test_crops: int = 0


class Demo(tfds.core.GeneratorBasedBuilder):
  """Offline demo set: 128² crops of bundled photographs; test photos differ from train ones."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  BUILDER_CONFIGS = [
      DemoConfig(name="default", train_crops=4000, test_crops=400,
                 description="The demo's training set."),
      DemoConfig(name="small", train_crops=300, test_crops=40,
                 description="A few crops, for tests."),
  ]

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(SIZE, SIZE, 3)),
            "file_name": tfds.features.Text(),
        }),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing to download
    c = self.builder_config
    return {"train": self._generate_examples(TRAIN_PHOTOS, c.train_crops, "train"),
            "test": self._generate_examples(TEST_PHOTOS, c.test_crops, "test")}

  def _generate_examples(self, names, count, split):
    photos = {name: Image.fromarray(photo(name)) for name in names}
    rng = np.random.default_rng(SPLIT_SEEDS[split])
    for i in range(count):
      name = names[i % len(names)]
      key = f"{name}/{i:05d}"
      yield key, {"image": png_bytes(random_crop(rng, photos[name])), "file_name": key}
