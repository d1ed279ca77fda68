"""Runs saved by earlier versions of this code, read by this one.

Configs: `upgrade_config` renames moved fields and fills in added ones.
Parameters: a flow level's K steps once held their subnets' first-layer condition rows
themselves (`injector/Conv_0` over ft_l, `coupling/Conv_0` over [x half, ft_l], each with a
bias); they are now one `condition_projection` conv of the level, and the coupling's
`Conv_0` reads x alone. `upgrade` rewrites a tree of the old layout (parameters, or the
optimiser moments shaped like them) into the new one, computing the same function;
`restore` uses it when a checkpoint's saved tree is of the old layout.
"""

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp


def _is_old_level(node: Any) -> bool:
  for name in ("step", "affine", "injector"):
    if not isinstance(node, dict) or name not in node:
      return False
    node = node[name]
  return isinstance(node, dict) and "Conv_0" in node


def _is_new_level(node: Any) -> bool:
  return isinstance(node, dict) and "condition_projection" in node and "step" in node


def _upgrade_level(level: dict) -> dict:
  affine = level["step"]["affine"]
  injector, coupling = affine["injector"], affine["coupling"]
  k, kh, kw, c, hidden = injector["Conv_0"]["kernel"].shape
  x_rows = coupling["Conv_0"]["kernel"].shape[-2] - c
  kernel = jnp.concatenate([injector["Conv_0"]["kernel"],
                            coupling["Conv_0"]["kernel"][..., x_rows:, :]], -1)
  bias = jnp.concatenate([injector["Conv_0"]["bias"], coupling["Conv_0"]["bias"]], -1)
  new_affine = {
      **affine,
      "injector": {name: p for name, p in injector.items() if name != "Conv_0"},
      "coupling": {**coupling, "Conv_0": {"kernel": coupling["Conv_0"]["kernel"][..., :x_rows, :]}},
  }
  return {**level, "step": {**level["step"], "affine": new_affine},
          "condition_projection": {
              "kernel": jnp.moveaxis(kernel, 0, -2).reshape(kh, kw, c, k * 2 * hidden),
              "bias": bias.reshape(k * 2 * hidden)}}


def _old_level_shapes(level: dict) -> dict:
  """The old layout's ShapeDtypeStructs of a new-layout level's (the inverse of `_upgrade_level`
  on shapes)."""
  affine = level["step"]["affine"]
  projection, x_conv = level["condition_projection"]["kernel"], affine["coupling"]["Conv_0"]["kernel"]
  k, kh, kw, x_rows, hidden = x_conv.shape
  c = projection.shape[-2]
  like = lambda a, shape: jax.ShapeDtypeStruct(shape, a.dtype, sharding=a.sharding)
  old_conv = lambda rows: {"kernel": like(x_conv, (k, kh, kw, rows, hidden)),
                           "bias": like(x_conv, (k, hidden))}
  new_affine = {
      **affine,
      "injector": {**affine["injector"], "Conv_0": old_conv(c)},
      "coupling": {**affine["coupling"], "Conv_0": old_conv(x_rows + c)},
  }
  rest = {name: node for name, node in level.items() if name != "condition_projection"}
  return {**rest, "step": {**level["step"], "affine": new_affine}}


def _rewrite(tree: Any, is_target: Callable[[Any], bool], rewrite: Callable[[dict], dict]) -> Any:
  """`tree` with every subtree that `is_target` picks replaced by `rewrite` of it; dicts,
  lists, tuples, named tuples (optax states) and dataclasses (train states) are walked."""
  if is_target(tree):
    return rewrite(tree)
  if dataclasses.is_dataclass(tree) and not isinstance(tree, type):
    return dataclasses.replace(tree, **{f.name: _rewrite(getattr(tree, f.name), is_target, rewrite)
                                        for f in dataclasses.fields(tree) if f.init})
  if isinstance(tree, dict):
    return {k: _rewrite(v, is_target, rewrite) for k, v in tree.items()}
  if isinstance(tree, tuple) and hasattr(tree, "_fields"):
    return type(tree)(*(_rewrite(v, is_target, rewrite) for v in tree))
  if isinstance(tree, list | tuple):
    return type(tree)(_rewrite(v, is_target, rewrite) for v in tree)
  return tree


def upgrade(tree: Any) -> Any:
  """A tree of the old parameter layout (or shaped like it) in the new one; a tree of the
  new layout comes back as it is."""
  return _rewrite(tree, _is_old_level, _upgrade_level)


def old_layout(abstract: Any) -> Any | None:
  """The old layout of an abstract tree of the new one (None: it has no flow level)."""
  found = []
  old = _rewrite(abstract, _is_new_level, lambda level: found.append(1) or _old_level_shapes(level))
  return old if found else None


def is_old_layout(saved: Any) -> bool:
  """Whether a saved tree (a checkpoint's metadata, or parameters) holds an old-layout level."""
  found = []
  _rewrite(saved, _is_old_level, lambda level: found.append(1) or level)
  return bool(found)


def restore(restore_fn: Callable[[Any], Any], abstract: Any, saved: Any) -> Any:
  """`restore_fn(abstract)`; when `saved` (the checkpoint's tree, `StageCheckpoints.saved_tree`)
  is of the old layout, the old layout of `abstract` is restored and upgraded (placed as
  `abstract` says)."""
  old = old_layout(abstract) if is_old_layout(saved) else None
  if old is None:
    return restore_fn(abstract)
  return jax.tree.map(lambda a, s: jax.device_put(a, s.sharding) if s.sharding else a,
                      upgrade(restore_fn(old)), abstract)


# Config fields renamed since runs were saved: old dotted path → new.
RENAMED_FIELDS = {
    "model.smooth_fill": "model.smooth_fill_method",
    "model.structure.base_fill": "model.structure.hole_base",
    "model.texture.fill_detail": "model.texture.smooth_fill_detail",
    "model.texture.gan_loss": "texture.gan_loss",
    "texture.paste_known_prior": "model.texture.paste_known_prior",
    "structure.temperature": "sample.temperature",
}
# Fields added since runs were saved, with the value those runs were trained with.
ADDED_FIELDS = {"model.smooth_fill_method": "harmonic", "model.structure.lowres_width": 0,
                "model.texture.paste_known_prior": False}
# Fields added since runs were saved whose value those runs took from another field.
SPLIT_FIELDS = {"texture.prior_noise_temperature": "sample.temperature"}


_MISSING = object()


def _node(tree: dict, path: str, create: bool = False) -> tuple[dict, str]:
  """(the section holding a dotted path's field, the field's name)."""
  *sections, field = path.split(".")
  for section in sections:
    tree = tree.setdefault(section, {}) if create else tree.get(section, {})
  return tree, field


def _pop(tree: dict, path: str) -> Any:
  node, field = _node(tree, path)
  return node.pop(field, _MISSING)


def _set_default(tree: dict, path: str, value: Any) -> None:
  node, field = _node(tree, path, create=True)
  node.setdefault(field, value)


def upgrade_config(saved: dict) -> dict:
  """A saved config (as a dict from its JSON) with this code's field names: renamed fields
  moved, fields added since given the value its run was trained with (a constant, or the
  value of the field they were split from)."""
  saved = json.loads(json.dumps(saved))
  for old, new in RENAMED_FIELDS.items():
    value = _pop(saved, old)
    if value is not _MISSING:
      _set_default(saved, new, value)
  for path, value in ADDED_FIELDS.items():
    _set_default(saved, path, value)
  for path, source in SPLIT_FIELDS.items():
    node, field = _node(saved, source)
    if field in node:
      _set_default(saved, path, node[field])
  return saved
