"""The datasets of flowfill_jax as tfds builders, read back with no TensorFlow.

    from flowfill_jax import datasets
    source = datasets.load("demo", "train")  # random access, len(); items {"image": uint8 HWC, …}

`load` prepares a dataset on first use (into `data_dir`, by default
$FLOWFILL_DATA_DIR or ~/tensorflow_datasets) and returns its array_record data
source. Nothing is downloaded: CelebA-HQ, Places2 and Paris StreetView are read
from a local `manual_dir` (layouts in `builders.py` and the README); the demo
set is cut from photographs that ship with scikit-image and scikit-learn.

Importing this package does not import tfds (about a second): masks and the
CLIs use its errors and file helpers; `load` imports the builders when called.
"""

import os

from flowfill_jax.datasets.errors import DataNotFoundError, DatasetError
from flowfill_jax.datasets.files import default_data_dir, list_images

NAMES = ("demo", "celeba_hq", "places2", "paris_streetview", "image_folder")
NEEDS_MANUAL_DIR = ("celeba_hq", "places2", "paris_streetview", "image_folder")

__all__ = ["NAMES", "DataNotFoundError", "DatasetError", "default_data_dir", "list_images",
           "load", "make_builder"]


def make_builder(name: str, data_dir: str | None = None, manual_dir: str | None = None):
  """The tfds builder of `name` ("demo", "demo/small", "celeba_hq", …) in `data_dir`."""
  from flowfill_jax.datasets import builders, demo
  classes = {"demo": demo.Demo, "celeba_hq": builders.CelebaHq, "places2": builders.Places2,
             "paris_streetview": builders.ParisStreetview, "image_folder": builders.ImageFolder}
  base, _, config = name.partition("/")
  if base not in classes:
    raise DatasetError(f"unknown dataset {name!r}: expected one of {', '.join(NAMES)}")
  if base == "image_folder":
    if not manual_dir:
      raise DataNotFoundError("image_folder needs manual_dir: the folder of images to use")
    config = builders.config_name(manual_dir)
  return classes[base](config=config or None, data_dir=data_dir or default_data_dir(),
                       file_format="array_record")


def _check_manual_dir(builder, name: str, manual_dir: str | None) -> None:
  expected = builder.MANUAL_DOWNLOAD_INSTRUCTIONS
  if manual_dir is None:
    raise DataNotFoundError(f"{name} is not prepared in {builder.data_dir_root} and no "
                            f"manual_dir was given: set data.manual_dir to a folder holding "
                            f"{expected}")
  if not os.path.isdir(manual_dir):
    raise DataNotFoundError(f"{name}: manual_dir {manual_dir} is not a folder; expected a "
                            f"folder holding {expected}")


def prepare(builder, name: str, manual_dir: str | None = None) -> None:
  """Build the array_record files once; later calls find them prepared and return."""
  if builder.is_prepared():
    return
  import tensorflow_datasets as tfds
  if name.partition("/")[0] in NEEDS_MANUAL_DIR:
    _check_manual_dir(builder, name, manual_dir)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=manual_dir))


def load(name: str, split: str, *, data_dir: str | None = None,
         manual_dir: str | None = None):
  """A split as a random-access data source, prepared on first use.

  Items are dicts with "image" (uint8 HxWx3) and "file_name". Raises
  DataNotFoundError naming what was expected where for a missing or empty
  manual_dir or a split the dataset does not have.
  """
  builder = make_builder(name, data_dir, manual_dir)
  prepare(builder, name, manual_dir)
  splits = sorted(builder.info.splits.keys())
  if split not in splits:
    raise DataNotFoundError(f"{name} has no split {split!r} in {builder.data_dir} (it has "
                            f"{', '.join(splits)}); the layout: "
                            f"{getattr(builder, 'MANUAL_DOWNLOAD_INSTRUCTIONS', None) or '-'}")
  return builder.as_data_source(split=split)
