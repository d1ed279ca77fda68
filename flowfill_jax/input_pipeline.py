"""tfds data sources → {image, mask} batches as global jax.Arrays sharded over the mesh.

Why grain's MapDataset over the tfds array_record sources: both are random
access, so example g of a run (its record from a seeded per-epoch shuffle, its
crop, flip and mask from an RNG seeded by (seed, g)) is a pure function of g.
A run restarted at step k therefore gets exactly the batches an uninterrupted
run would have got, with no iterator state to checkpoint; each process reads
only its own rows of every global batch; and the same batches come out whether
examples are prepared in-process (prefetch threads) or in worker processes
(`num_workers`, grain's mp_prefetch). No TensorFlow anywhere.

Batches: {"image": float32 [B, S, S, 3] in [0, 1], "mask": float32 [B, S, S, 1],
1 = hole}, B the global batch size, sharded on the mesh's data axis.

Train (`train=True`): shuffled anew every epoch, random horizontal flip, a
free-form mask from the bucket (or a random mask of `mask_dir` in the bucket),
forever. Eval (`train=False`): one pass in the split's stored order, no flip,
the bucket's fixed evaluation masks (mask i for example i; the same set for the
same seed); the last batch is padded with examples from the split's start and
the batch carries "valid", a host float32 [B] array, 0 on padding rows.

Images are fitted to S² as the paper does: datasets stored square (CelebA-HQ,
Places2, the demo, folders) are resized whole, antialiased; Paris StreetView,
stored at full size, gives a 256² crop (random in training, centred in
evaluation), resized to S² when S is not 256.
"""

import functools
import math
import os
from typing import Iterator

import grain
import jax
import ml_collections
import numpy as np
from PIL import Image

from flowfill_jax import datasets, masks, sharding
from flowfill_jax.datasets import DataNotFoundError, files

# Stored at full size; training and evaluation see crops of this side.
CROP_SIZES = {"paris_streetview": 256}
READ_OPTIONS = grain.ReadOptions(num_threads=2, prefetch_buffer_size=4)  # per process; in batches


def default_data_config() -> ml_collections.ConfigDict:
  """The data fields every config starts from; `configs/<name>.py` override them."""
  c = ml_collections.ConfigDict()
  c.name = "celeba_hq"  # demo | celeba_hq | places2 | paris_streetview | image_folder
  c.data_dir = ml_collections.FieldReference(None, field_type=str)  # None: $FLOWFILL_DATA_DIR
  c.manual_dir = ml_collections.FieldReference(None, field_type=str)  # the raw release
  c.image_size = 256
  c.mask_bucket = "random"  # 20-40 | 40-60 | random (20-60) | "lo-hi" in percent
  c.batch_size = 16  # global, over all processes
  c.num_workers = 0  # 0: prepared in-process (threads); n: n grain worker processes
  c.mask_dir = ml_collections.FieldReference(None, field_type=str)  # external masks
  c.invert_mask = False  # mask_dir files have white = known
  c.train_split = "train"
  c.eval_split = "test"
  return c


def fit_image(image: np.ndarray, size: int, crop: int | None,
              rng: np.random.Generator | None) -> np.ndarray:
  """uint8 HxWx3 → size²: the centred square, or a crop² window (random with `rng`, else
  centred; images smaller than `crop` are first enlarged), then an antialiased resize."""
  img = Image.fromarray(image)
  if crop is None:
    img = files.center_square(img)
  else:
    w, h = img.size
    if min(w, h) < crop:
      scale = crop / min(w, h)
      w, h = max(crop, round(w * scale)), max(crop, round(h * scale))
      img = files.resize(img, w, h)
    x = int(rng.integers(0, w - crop + 1)) if rng is not None else (w - crop) // 2
    y = int(rng.integers(0, h - crop + 1)) if rng is not None else (h - crop) // 2
    img = img.crop((x, y, x + crop, y + crop))
  return np.asarray(files.resize(img, size, size))


@functools.lru_cache(maxsize=4)
def external_masks(mask_dir: str, invert: bool, size: int, bucket: str) -> np.ndarray:
  """The masks of `mask_dir` in the bucket, uint8 [n, size, size], read once per process."""
  found = masks.load_mask_folder(mask_dir, invert, size, buckets=(bucket,))
  in_bucket = found[masks.bucket_name(bucket)]
  if not in_bucket:
    lo, hi = masks.ratio_range(bucket)
    raise DataNotFoundError(f"no mask in {mask_dir} has a hole ratio in bucket {bucket} "
                            f"({lo:.0%}-{hi:.0%}){' (inverted)' if invert else ''}")
  return np.stack(in_bucket)


class MaskSource:
  """A stream's masks: free-form (train) and the fixed evaluation set, or `mask_dir`'s."""

  def __init__(self, config: ml_collections.ConfigDict, seed: int):
    self.bucket, self.size, self.seed = config.mask_bucket, config.image_size, seed
    self.mask_dir, self.invert = config.mask_dir, bool(config.invert_mask)
    data_dir = config.data_dir or files.default_data_dir()
    self.cache_dir = os.path.join(data_dir, "flowfill_eval_masks")
    masks.ratio_range(self.bucket)  # a bad bucket fails here, not in a worker
    if self.mask_dir:
      self.external()

  def external(self) -> np.ndarray:
    return external_masks(self.mask_dir, self.invert, self.size, self.bucket)

  def train(self, rng: np.random.Generator) -> np.ndarray:
    if self.mask_dir:
      return self.external()[int(rng.integers(len(self.external())))]
    return masks.free_form_mask(rng, self.size, self.bucket)

  def eval(self, index: int) -> np.ndarray:
    if self.mask_dir:
      return self.external()[index % len(self.external())]
    return masks.eval_mask(self.bucket, index, self.size, self.seed, self.cache_dir)


class TrainExample:
  """Random crop/resize, flip and mask of one example (a grain RandomMap, picklable)."""

  def __init__(self, size: int, crop: int | None, mask_source: MaskSource):
    self.size, self.crop, self.masks = size, crop, mask_source

  def __call__(self, element: dict, rng: np.random.Generator) -> dict:
    image = fit_image(element["image"], self.size, self.crop, rng)
    if rng.random() < 0.5:
      image = image[:, ::-1]
    return {"image": image, "mask": self.masks.train(rng)}


class EvalExample:
  """Centred fit and evaluation mask `index` of example `index` (a grain MapWithIndex)."""

  def __init__(self, size: int, crop: int | None, mask_source: MaskSource):
    self.size, self.crop, self.masks = size, crop, mask_source

  def __call__(self, index: int, element: dict) -> dict:
    image = fit_image(element["image"], self.size, self.crop, None)
    return {"image": image, "mask": self.masks.eval(index)}


def to_float(batch: dict) -> dict:
  return {"image": batch["image"].astype(np.float32) / 255.0,
          "mask": batch["mask"].astype(np.float32)[..., None]}


def examples(source, data_config: ml_collections.ConfigDict, *, seed: int,
             train: bool, batch_size: int) -> grain.MapDataset:
  """Example g of the stream at index g: forever (train) or one pass padded to batches."""
  crop = CROP_SIZES.get(data_config.name.partition("/")[0])
  mask_source = MaskSource(data_config, seed)
  ds = grain.MapDataset.source(source).seed(seed)
  if train:
    example = TrainExample(data_config.image_size, crop, mask_source)
    return ds.shuffle().repeat().random_map(example)
  padded = math.ceil(len(source) / batch_size) * batch_size
  example = EvalExample(data_config.image_size, crop, mask_source)
  return ds.repeat()[:padded].map_with_index(example)


def local_batches(source, data_config: ml_collections.ConfigDict, *, seed: int,
                  start_step: int = 0, train: bool = True, process_index: int = 0,
                  process_count: int = 1) -> grain.IterDataset:
  """One process's rows of every global batch from `start_step` on, as numpy dicts.

  Step s is examples s·B … s·B+B-1 of the stream; process p loads rows
  p·b … p·b+b-1 of it (b = B / process_count): its batches are p, p+P, … of
  the stream cut into b-example batches.
  """
  batch_size = data_config.batch_size
  if batch_size % process_count:
    raise ValueError(f"global batch size {batch_size} is not divisible by {process_count} "
                     "processes")
  ds = examples(source, data_config, seed=seed, train=train, batch_size=batch_size)
  ds = ds.batch(batch_size // process_count, drop_remainder=True)
  ds = ds[process_index::process_count][start_step:].map(to_float)
  it = ds.to_iter_dataset(READ_OPTIONS)
  if data_config.num_workers:
    _absl_flags_usable()
    it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=data_config.num_workers))
  return it


def create_iterator(data_config: ml_collections.ConfigDict, mesh, *, split: str, seed: int,
                    start_step: int = 0, train: bool = True) -> Iterator[dict]:
  """Global batches from step `start_step` on: forever (train) or one pass (eval).

  Each process loads only its rows (`local_batches`);
  `make_array_from_process_local_data` places them on its devices.
  """
  sharding.check_batch_size(data_config.batch_size, mesh)
  source = datasets.load(data_config.name, split, data_dir=data_config.data_dir,
                         manual_dir=data_config.manual_dir)
  local = local_batches(source, data_config, seed=seed, start_step=start_step, train=train,
                        process_index=jax.process_index(), process_count=jax.process_count())
  return _global_batches(iter(local), mesh, data_config.batch_size, start_step,
                         None if train else len(source))


def _absl_flags_usable() -> None:
  """grain 0.2.x's mp_prefetch reads an absl flag, which fails outside `absl.app` until
  flags count as parsed (google/grain#1355): mark them parsed, keeping their defaults."""
  from absl import flags
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def _global_batches(own_rows, mesh, batch_size: int, step: int,
                    num_examples: int | None) -> Iterator[dict]:
  """Each process's rows → global arrays; eval batches get their host `valid` rows."""
  batch_sharding = sharding.batch_sharding(mesh)
  try:
    for local in own_rows:
      batch = {k: jax.make_array_from_process_local_data(
          batch_sharding, v, (batch_size,) + v.shape[1:]) for k, v in local.items()}
      if num_examples is not None:
        rows = step * batch_size + np.arange(batch_size)
        batch["valid"] = (rows < num_examples).astype(np.float32)
      step += 1
      yield batch
  finally:
    getattr(own_rows, "close", lambda: None)()  # stops mp_prefetch workers
