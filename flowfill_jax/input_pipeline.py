"""tfds data sources → {image, mask} batches as global arrays sharded over the mesh.

Why index arithmetic rather than a stateful iterator: the sources are random
access (array_record), so example `g = step·B + i` of a run is a pure function of
(seed, g): its record (from a seeded permutation of its epoch), its flip and crop,
and its mask. A run restarted at step k therefore sees exactly the batches an
uninterrupted run would have seen, with no iterator state in the checkpoint, and
each process computes only its own slice of every global batch (multi-host).

Batches: {"image": float32 [B, S, S, 3] in [0, 1], "mask": float32 [B, S, S, 1],
1 = hole}, sharded on the mesh's data axis. Evaluation (`train=False`) is one
deterministic pass with the fixed evaluation masks; its last batch is padded by
repeating the last example and carries `valid` (host array, 1 = real example).
"""

import collections
import concurrent.futures
import multiprocessing
from collections.abc import Iterator
from typing import Any

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from flowfill_jax import datasets, masks, resize, sharding
from flowfill_jax.datasets import DatasetError, photos

DATA_ERRORS = (DatasetError,)
FULL_SIZE_DATASETS = ("paris_streetview",)  # stored uncropped; 256 crops at load time
# Training splits stored as whole photographs: squares of several scales cut at load time.
MULTI_SCALE_TRAIN_DATASETS = ("photos",)
PREFETCH_BATCHES = 2


def _square_crop(image: np.ndarray, size: int, rng: np.random.Generator | None) -> np.ndarray:
  """A size² crop (random with `rng`, else centred); smaller images are resized up first."""
  h, w = image.shape[:2]
  if min(h, w) < size:
    scale = size / min(h, w)
    image = resize.image(image, (round(h * scale), round(w * scale)))
    h, w = image.shape[:2]
  y = int(rng.integers(0, h - size + 1)) if rng is not None else (h - size) // 2
  x = int(rng.integers(0, w - size + 1)) if rng is not None else (w - size) // 2
  return image[y:y + size, x:x + size]


class _Examples:
  """Example `g` of the stream for a (dataset, split, seed, mode): image and mask, uint8."""

  def __init__(self, config: ml_collections.ConfigDict, split: str, seed: int, train: bool):
    self.source = datasets.load(config.name, split, data_dir=config.data_dir,
                                manual_dir=config.manual_dir)
    if len(self.source) == 0:
      raise DatasetError(f"{config.name}/{split} holds no examples")
    self.config, self.seed, self.train = config, seed, train
    self.size = config.image_size
    self.bucket = config.mask_bucket
    masks.ratio_range(self.bucket)  # fail early on a bad bucket name
    self.external = None
    if config.get("mask_dir"):
      by_bucket = masks.load_mask_folder(config.mask_dir, config.invert_mask, self.size,
                                         buckets=(self.bucket,))
      self.external = by_bucket.get(self.bucket) or None
      if self.external is None:
        raise DatasetError(f"no mask in {config.mask_dir} has a hole ratio in bucket "
                           f"{self.bucket}")
    self._perm_epoch, self._perm = None, None

  def __len__(self):
    return len(self.source)

  def _record(self, g: int) -> int:
    n = len(self.source)
    if not self.train:
      return g % n
    epoch = g // n
    if epoch != self._perm_epoch or self._perm is None:
      self._perm = np.random.default_rng([self.seed, epoch, 3]).permutation(n)
      self._perm_epoch = epoch
    return int(self._perm[g % n])

  def _mask(self, g: int, rng: np.random.Generator) -> np.ndarray:
    if self.external is not None:
      index = int(rng.integers(len(self.external))) if self.train else g % len(self.external)
      return self.external[index]
    if self.train:
      return masks.free_form_mask(rng, self.size, self.bucket)
    cache = masks.eval_mask_dir(self.size, self.seed)
    return masks.read_eval_mask(cache, self.bucket, g, self.size, self.seed)

  def __call__(self, g: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([self.seed, g, int(self.train)])
    image = self.source[self._record(g)]["image"]
    if self.config.name in FULL_SIZE_DATASETS:
      image = _square_crop(image, self.size, rng if self.train else None)
    elif self.train and self.config.name in MULTI_SCALE_TRAIN_DATASETS:
      y0, x0, y1, x1 = photos.random_crop_box(rng, image.shape)
      image = resize.image(image[y0:y1, x0:x1], self.size)
    else:
      image = resize.square(image, self.size)
    if self.train and rng.random() < 0.5:
      image = image[:, ::-1]
    return image, self._mask(g, rng)


def _global_batch(local: np.ndarray, mesh, batch_size: int) -> jax.Array:
  return jax.make_array_from_process_local_data(sharding.batch_sharding(mesh), local,
                                                (batch_size,) + local.shape[1:])


# Worker processes: each builds its own `_Examples` once (its own open data source) and
# returns example `g` by index, so a worker's output is the same as the main process's.
_WORKER_EXAMPLES: "_Examples | None" = None


def _start_worker(data_config: dict, split: str, seed: int, train: bool) -> None:
  global _WORKER_EXAMPLES
  _WORKER_EXAMPLES = _Examples(ml_collections.ConfigDict(data_config), split, seed, train)


def _worker_example(g: int) -> tuple[np.ndarray, np.ndarray]:
  assert _WORKER_EXAMPLES is not None
  return _WORKER_EXAMPLES(g)


def _example_pool(data_config: ml_collections.ConfigDict, split: str, seed: int,
                  train: bool) -> concurrent.futures.ProcessPoolExecutor | None:
  """`data.num_workers` processes (0: examples are made in this process). Python draws the
  masks and crops, so threads would share one core; spawned (not forked) processes, since
  forking a process that runs JAX's threads can deadlock."""
  workers = data_config.get("num_workers", 0)
  if not workers or not train:  # evaluation reads a few batches: not worth the start-up
    return None
  return concurrent.futures.ProcessPoolExecutor(
      workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
      initargs=(data_config.to_dict(), split, seed, train))


def create_iterator(data_config: ml_collections.ConfigDict, mesh: Mesh, *, split: str, seed: int,
                    start_step: int = 0, train: bool = True) -> Iterator[dict]:
  """Batches from `start_step` on (train: forever; eval: one pass over the split).

  With `data.num_workers` > 0 the training examples of the next `PREFETCH_BATCHES`
  batches are made in worker processes while the device runs the current step.
  """
  batch_size = data_config.batch_size
  sharding.check_batch_size(batch_size, mesh)
  processes = jax.process_count()
  if batch_size % processes:
    raise ValueError(f"batch size {batch_size} is not divisible by {processes} processes")
  local = batch_size // processes
  offset = jax.process_index() * local
  examples = _Examples(data_config, split, seed, train)
  steps = None if train else -(-len(examples) // batch_size)

  def ids_of(step):
    ids = [step * batch_size + offset + i for i in range(local)]
    return ids if train else [min(g, len(examples) - 1) for g in ids]  # eval pads with the last

  def generate():
    pool = _example_pool(data_config, split, seed, train)
    pending = collections.deque()
    step = start_step
    try:
      while steps is None or step < steps:
        if pool is None:
          pairs = [examples(g) for g in ids_of(step)]
        else:
          last = step + PREFETCH_BATCHES if steps is None else min(step + PREFETCH_BATCHES, steps)
          for s in range(step + len(pending), last):
            pending.append(pool.map(_worker_example, ids_of(s)))
          pairs = list(pending.popleft())
        first = step * batch_size + offset
        valid = np.array([first + i < len(examples) or train for i in range(local)], np.float32)
        images = np.stack([p[0] for p in pairs]).astype(np.float32) / 255.0
        mask = np.stack([p[1] for p in pairs]).astype(np.float32)[..., None]
        batch: dict[str, Any] = {"image": _global_batch(images, mesh, batch_size),
                                 "mask": _global_batch(mask, mesh, batch_size)}
        if not train:
          batch["valid"] = valid if processes == 1 else np.asarray(
              multihost_utils.process_allgather(valid)).reshape(-1)
        yield batch
        step += 1
    finally:
      if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)

  return generate()
