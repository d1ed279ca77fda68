"""Stage 1's trained E + f of a run as one float16 msgpack file (no optimiser state), to bring
a stage-1 run back from a lent machine whose output folder takes files of 16 MB at most.

  python experiments/export_structure.py --workdir RUN --out structure.msgpack

Its tree is `factory.abstract_structure_variables(config)`'s, as `Inpainter.export` stores
stage 1 under "structure".
"""

import argparse

import jax
import numpy as np
from flax import serialization

from flowfill_jax import factory, fileio
from flowfill_jax.inference import load_config


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--out", required=True)
  args = parser.parse_args()
  variables = factory.load_structure_variables(load_config(args.workdir), args.workdir)
  half = jax.tree.map(lambda x: np.asarray(x, np.float16) if x.dtype == np.float32
                      else np.asarray(x), variables)
  fileio.write_bytes(args.out, serialization.msgpack_serialize(half))
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
