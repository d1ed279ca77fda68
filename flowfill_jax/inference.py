"""Use a trained run: diverse inpainting, semantic transfer, exact likelihoods, latents.

    from flowfill_jax.inference import Inpainter
    model = Inpainter.from_workdir("runs/photos")   # or from_workdir() for the shipped model
    completions = model.inpaint(image, mask, num=8, temperature=0.8, seed=0)

`from_workdir` takes a run written by `flowfill_jax.train`, a folder written by
`Inpainter.export` (`python -m flowfill_jax.export`), or nothing: then the small photo
model that ships inside the package (configs/photos.py).

Arrays in, arrays out: images float32 in [0, 1] (HxWx3, or NxHxWx3), masks HxW,
HxWx1 or NxHxWx1 with 1 = hole. Images of another size than the model's are
resized to it (`flowfill_jax.resize`: bicubic antialiased as in training, any-hole
masks), completed, and the completion is resized back and composited with the user's
own known pixels, so those are exact at the user's resolution.
"""

import functools
import importlib.resources
import json
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import serialization
from numpy.typing import ArrayLike

from flowfill_jax import compilation, factory, fileio, image_ops, legacy, resize
from flowfill_jax.checkpoints import StageCheckpoints
from flowfill_jax.config_base import base_config
from flowfill_jax.errors import UserError
from flowfill_jax.models.flow import flatten_latents, unflatten_latents
from flowfill_jax.user_input import check_hole, check_pixels, check_temperature, image_pixels

# An exported model: `config.json` beside this file of E, f and G weights (Inpainter.export).
WEIGHTS_FILE = "weights.msgpack"
# The model that ships inside the package (`flowfill_jax/weights/photos`: configs/photos.py).
SHIPPED_MODEL = str(importlib.resources.files("flowfill_jax") / "weights" / "photos")


class Samples(NamedTuple):
  """`Inpainter.sample`'s result, for one image ([N, ...]) or a batch ([B, N, ...])."""
  completions: np.ndarray  # at the user's size, known pixels exactly the user's
  priors: np.ndarray  # stage 1's structural priors, prior_size², image units, unclipped
  log_prob: np.ndarray  # exact log p(prior | masked image), nats


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a run was trained with, checked against this code's fields."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise UserError(f"{workdir} is not a training run: no config.json there")
  try:
    with open(path) as f:
      saved = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise UserError(f"cannot read {path}: {e}") from None
  saved = legacy.upgrade_config(saved)
  known = base_config().to_dict()
  for section in ("structure", "texture"):
    fields = set(saved.get("model", {}).get(section, {}))
    if fields != set(known["model"][section]):
      raise UserError(f"the model in {path} does not match this code (model.{section} fields "
                      f"differ: {sorted(fields ^ set(known['model'][section]))})")
  return ml_collections.ConfigDict(saved)


def _as_batch(image, channels):
  x = image_pixels(image) if channels == 3 else np.asarray(image, np.float32)
  if channels == 1 and (x.ndim == 2 or (x.ndim == 3 and x.shape[-1] != 1)):
    x = x[..., None]  # HxW or BxHxW masks get their channel axis
  if x.ndim == 3:
    x = x[None]
  if x.ndim != 4 or x.shape[-1] != channels:
    raise UserError(f"expected {'an image HxWx3' if channels == 3 else 'a mask HxW'} "
                    f"(or a batch of them), got shape {np.shape(image)}")
  return x


def _shapes(tree) -> dict:
  """{path: shape} of a tree of arrays (or of shape structs)."""
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {jax.tree_util.keystr(path): tuple(np.shape(x)) for path, x in leaves}


class Inpainter:
  """A trained Flow-Fill run (both stages), ready to sample from."""

  def __init__(self, config: ml_collections.ConfigDict, structure_vars: dict,
               generator_params: dict, checkpoint_steps: dict | None = None):
    self.config = config
    self.checkpoint_steps = checkpoint_steps or {}  # {stage: step} the weights come from
    self.size = config.data.image_size
    self.two_stage = factory.two_stage(config)
    self.structure = self.two_stage.structure
    self.structure_vars = structure_vars
    self.generator_params = generator_params
    self.temperature = config.sample.temperature
    self._complete = compilation.jit(self.two_stage.sample_completions, static_argnames=("num",))
    self._texture = compilation.jit(self.two_stage.texture)
    s = self.structure
    self._encode = compilation.jit(functools.partial(s.apply, method=s.encode),
                                   static_argnames=("standardized",))
    self._decode = compilation.jit(functools.partial(s.apply, method=s.decode),
                                   static_argnames=("standardized",))
    self._log_prob = compilation.jit(functools.partial(s.apply, method=s.log_prob))
    self._prior_bits = compilation.jit(functools.partial(s.apply, method=s.prior_bits_per_dim))

  @classmethod
  def from_workdir(cls, workdir: str | None = None) -> "Inpainter":
    """A training run (latest checkpoints of both stages), an exported model, or with no
    `workdir` the model shipped in the package."""
    if workdir is None:
      if not os.path.exists(os.path.join(SHIPPED_MODEL, WEIGHTS_FILE)):
        raise UserError(f"this installation has no shipped model ({SHIPPED_MODEL} is "
                        "missing): pass --workdir with a run written by flowfill_jax.train")
      workdir = SHIPPED_MODEL
    if os.path.exists(os.path.join(workdir, WEIGHTS_FILE)):
      return cls._from_export(workdir)
    config = load_config(workdir)
    structure_vars = factory.load_structure_variables(config, workdir)
    generator_params = factory.load_generator_params(config, workdir)
    steps = {}
    for stage in ("structure", "texture"):
      checkpoints = StageCheckpoints(os.path.join(workdir, stage, "checkpoints"))
      steps[stage] = checkpoints.latest_step()
      checkpoints.close()
    return cls(config, structure_vars, generator_params, steps)

  @classmethod
  def _from_export(cls, directory: str) -> "Inpainter":
    config = load_config(directory)
    path = os.path.join(directory, WEIGHTS_FILE)
    try:
      with open(path, "rb") as f:
        saved = serialization.msgpack_restore(f.read())
    except Exception as e:  # msgpack raises several types on a damaged file
      raise UserError(f"cannot read the model weights {path}: {e}") from None
    if not isinstance(saved, dict) or not {"structure", "generator"} <= set(saved):
      raise UserError(f"{path} holds no model weights (expected structure and generator)")
    saved["structure"] = legacy.upgrade(saved["structure"])
    for name, abstract in (("structure", factory.abstract_structure_variables(config)),
                           ("generator", factory.abstract_generator_params(config))):
      if _shapes(saved[name]) != _shapes(abstract):
        raise UserError(f"the {name} weights in {path} do not match the model that "
                        f"{os.path.join(directory, 'config.json')} describes")
    as_f32 = functools.partial(jax.tree.map, lambda x: jnp.asarray(x, jnp.float32)
                               if np.issubdtype(np.asarray(x).dtype, np.floating) else jnp.asarray(x))
    steps = {k: int(v) for k, v in saved.get("steps", {}).items()}
    return cls(config, as_f32(saved["structure"]), as_f32(saved["generator"]), steps)

  def export(self, directory: str, half: bool = True) -> str:
    """Write what inference needs, `config.json` and E, f and G weights (no optimiser,
    no D), to `directory`; with `half`, parameters are stored as float16 (half the size;
    computation stays float32, so the flow stays exactly invertible). → the weights file."""
    def store(x):
      x = np.asarray(x)
      return x.astype(np.float16) if half and x.dtype == np.float32 else x
    structure = dict(self.structure_vars)
    structure["params"] = jax.tree.map(store, structure["params"])
    saved = {"structure": jax.tree.map(np.asarray, structure),
             "generator": jax.tree.map(store, self.generator_params),
             "steps": {k: int(v) for k, v in self.checkpoint_steps.items() if v is not None}}
    path = os.path.join(directory, WEIGHTS_FILE)
    fileio.write_bytes(path, serialization.msgpack_serialize(saved))
    fileio.write_text(os.path.join(directory, "config.json"), self.config.to_json_best_effort(
        indent=2) + "\n")
    return path

  def replicate(self, sharding: jax.sharding.Sharding) -> None:
    """Place both stages' variables with `sharding` (e.g. replicated over a device mesh)."""
    self.structure_vars = jax.device_put(self.structure_vars, sharding)
    self.generator_params = jax.device_put(self.generator_params, sharding)

  # Resolution handling -------------------------------------------------------------------

  def _to_model(self, image, mask):
    """User batch → model-size (masked image, mask), as jnp arrays."""
    image, mask = _as_batch(image, 3), _as_batch(mask, 1)
    if image.shape[:3] != mask.shape[:3]:
      raise UserError(f"mask size {mask.shape[1:3]} differs from image size {image.shape[1:3]}")
    for i, m in enumerate(mask):
      check_hole(m, "the mask" if len(mask) == 1 else f"mask {i}")
    hole = mask > 0.5
    check_pixels(image, ~hole, "the image")
    image = np.where(hole, 0.0, image)  # what is under the hole (NaN, say) never reaches the model
    image = np.stack([resize.image(x, self.size) for x in image])
    mask = np.stack([resize.mask(m, self.size) for m in mask]).astype(np.float32)
    image, mask = jnp.asarray(image), jnp.asarray(mask)
    return image * (1 - mask), mask

  def _to_user(self, completions, image, mask):
    """Model-size completions [B, N, s, s, 3] → user size, user's known pixels exact."""
    image, mask = _as_batch(image, 3), (_as_batch(mask, 1) > 0.5)
    size = image.shape[1:3]
    out = np.stack([[resize.image(c, size) for c in per_image]
                    for per_image in np.asarray(completions, np.float32)])
    return np.where(mask[:, None], out, image[:, None]).astype(np.float32)

  # The API -------------------------------------------------------------------------------

  def inpaint(self, image: ArrayLike, mask: ArrayLike, num: int = 8,
              temperature: float | None = None, seed: int = 0,
              return_log_prob: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """`num` diverse completions of each image: [num, H, W, 3] (or [B, num, H, W, 3]).

    With `return_log_prob`, also the exact stage-1 log density of each sample's
    structural prior, log p(I_s | I_m) in nats ([num] or [B, num]).
    """
    samples = self.sample(image, mask, num, temperature, seed)
    return (samples.completions, samples.log_prob) if return_log_prob else samples.completions

  def sample(self, image: ArrayLike, mask: ArrayLike, num: int = 8,
             temperature: float | None = None, seed: int = 0,
             key: jax.Array | None = None) -> Samples:
    """`inpaint` with the structural priors too (see `Samples`); `key` replaces `seed`."""
    check_temperature(temperature)
    single = np.ndim(image) == 3
    masked_image, m = self._to_model(image, mask)
    tau = self.temperature if temperature is None else temperature
    key = jax.random.key(seed) if key is None else key
    out, priors, log_prob = self._complete(self.structure_vars, self.generator_params,
                                           masked_image, m, key, num=num, temperature=tau)
    result = Samples(self._to_user(out, image, mask), np.asarray(priors), np.asarray(log_prob))
    return Samples(*(x[0] for x in result)) if single else result

  def complete(self, masked_image: jax.Array, mask: jax.Array, key: jax.Array, num: int,
               temperature: float | None = None) -> tuple[jax.Array, jax.Array]:
    """The fast path for batches already at the model's size, kept on device.

    `masked_image` [B, s, s, 3] with its holes zeroed and `mask` [B, s, s, 1] (1 = hole), as
    jax arrays (sharded or not) → (completions [B, num, s, s, 3], log p(prior) [B, num]).
    """
    check_temperature(temperature)
    tau = self.temperature if temperature is None else temperature
    out, _, log_prob = self._complete(self.structure_vars, self.generator_params, masked_image,
                                      mask, key, num=num, temperature=tau)
    return out, log_prob

  def latents(self, target: ArrayLike, mask: ArrayLike) -> jax.Array:
    """Standardised latents ε of `target`'s structure given its own masked version."""
    pixels = _as_batch(target, 3)
    check_pixels(pixels, np.ones((), bool), "the target image")  # all of it, the hole too
    masked_image, m = self._to_model(target, mask)
    truth = jnp.asarray(np.stack([resize.image(x, self.size) for x in pixels]))
    # In flow space as training sees it: area-downsampled, quantised, mid-bin.
    truth = image_ops.dequantize(image_ops.area_downsample(truth, self.structure.prior_size),
                                 self.structure.n_bits, None)
    eps, _, _ = self._encode(self.structure_vars, truth, masked_image, m, standardized=True)
    return flatten_latents(eps)

  def prior_from_latents(self, latents: jax.Array, image: ArrayLike,
                         mask: ArrayLike) -> np.ndarray:
    """Decode flat standardised latents [B, D] under `image`'s condition → prior in [0, 1]."""
    masked_image, m = self._to_model(image, mask)
    s = self.structure
    x, _, _ = self._decode(self.structure_vars, unflatten_latents(latents, s.prior_size, s.levels),
                           masked_image, m, standardized=True)
    return np.asarray(image_ops.postprocess(x))

  def transfer(self, target: ArrayLike, source: ArrayLike, mask: ArrayLike) -> np.ndarray:
    """Semantic transfer (paper §4.3): `source` completed with `target`'s content in the hole.

    z = f(I_t↓; E((I_t·(1−M))↓)), I_s = f⁻¹(z; E(I_m↓)), I_c = G(I_s↑, I_m).
    """
    single = np.ndim(source) == 3
    z = self.latents(target, mask)
    prior = self.prior_from_latents(z, source, mask)
    masked_image, m = self._to_model(source, mask)
    out = self._texture(self.generator_params, jnp.asarray(prior), masked_image, m)
    out = self._to_user(np.asarray(out)[:, None], source, mask)[:, 0]
    return out[0] if single else out

  def log_prob(self, prior: ArrayLike, image: ArrayLike, mask: ArrayLike) -> np.ndarray:
    """Exact log p(I_s | I_m) in nats of a prior at prior_size² (image units, as sampled):
    the figure `inpaint(return_log_prob=True)` gives for its own samples."""
    masked_image, m = self._to_model(image, mask)
    prior = jnp.asarray(_as_batch(prior, 3))
    return np.asarray(self._log_prob(self.structure_vars, prior, masked_image, m))

  def bits_per_dim(self, prior: ArrayLike, image: ArrayLike, mask: ArrayLike) -> np.ndarray:
    """bits/dim of a prior image in [0, 1] as training reports it: quantised to the
    model's bits, evaluated mid-bin, with the discretisation term (a diagnostic)."""
    masked_image, m = self._to_model(image, mask)
    prior = jnp.asarray(_as_batch(prior, 3))
    return np.asarray(self._prior_bits(self.structure_vars, prior, masked_image, m))
