"""The one device mesh of a run and the shardings derived from it.

Data parallel: the batch is split over the `data` axis, parameters and
optimizer state are replicated. The same code runs on one CPU, 8 fake CPU
devices, a GPU, or every device of a multi-host TPU pod.
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"


def make_mesh(num_devices: int | None = None) -> Mesh:
  """A 1-D mesh over all (or the first `num_devices`) global devices."""
  devices = jax.devices()
  if num_devices:
    if num_devices > len(devices):
      raise ValueError(f"mesh asks for {num_devices} devices, JAX sees {len(devices)}")
    devices = devices[:num_devices]
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over the data axis, the rest whole."""
  return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
  n = mesh.shape[DATA_AXIS]
  if batch_size % n:
    raise ValueError(f"global batch size {batch_size} is not divisible by the "
                     f"{n} devices of the mesh")
