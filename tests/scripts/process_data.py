"""One process of a multi-process input pipeline: which examples it read, and what the global
batches hold. Prints a digest as JSON.

Usage: process_data.py COORDINATOR NUM_PROCESSES PROCESS_ID DATA_DIR (NUM_PROCESSES = 1: no
jax.distributed). Run by tests/test_multiprocess.py with 2 host devices per process.
"""

import itertools
import json
import sys

import jax
import numpy as np
from jax.experimental import multihost_utils

sys.path.insert(0, __file__.rsplit("/scripts/", 1)[0])
from conftest import tiny_config  # noqa: E402


def main(coordinator: str, processes: int, index: int, data_dir: str):
  if processes > 1:
    jax.distributed.initialize(coordinator, processes, index)
  from flowfill_jax import input_pipeline, sharding

  read = []
  call = input_pipeline._Examples.__call__

  def recording(self, g):
    read.append(int(g))
    return call(self, g)

  input_pipeline._Examples.__call__ = recording
  config = tiny_config()
  config.data.data_dir = data_dir
  mesh = sharding.make_mesh()
  digest = {"devices": mesh.size, "read": {}, "sums": {}}
  # Evaluation in batches of 48: the demo's 400 test crops end in a padded batch.
  for name, train, batch_size, start, count in (("train", True, 8, 5, 2),
                                                ("eval", False, 48, 0, None)):
    read.clear()
    config.data.batch_size = batch_size
    split = config.data.train_split if train else config.data.eval_split
    batches = input_pipeline.create_iterator(config.data, mesh, split=split, seed=0,
                                             start_step=start, train=train)
    sums = []
    for batch in itertools.islice(batches, count):  # eval: the whole pass
      valid = batch.pop("valid", None)
      # Per-example sums of the global arrays, gathered to every process.
      for key in ("image", "mask"):
        whole = multihost_utils.process_allgather(batch[key], tiled=True)
        sums.append(np.asarray(whole, np.float64).sum(axis=(1, 2, 3)).round(4).tolist())
      if valid is not None:
        sums.append(np.asarray(valid).tolist())
    digest["read"][name] = sorted(read)
    digest["sums"][name] = sums
  print(json.dumps(digest))


if __name__ == "__main__":
  main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
