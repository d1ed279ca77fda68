"""One stage-1 and one stage-2 train step on a mesh of N devices; prints a digest as JSON.

Run in its own process (XLA_FLAGS=--xla_force_host_platform_device_count=8) by
tests/test_sharding.py, which compares the digests for N = 8 and N = 1.
"""

import json
import sys

import jax
import numpy as np

sys.path.insert(0, __file__.rsplit("/scripts/", 1)[0])
from conftest import box_masks, real_crops  # noqa: E402

from flowfill_jax import sharding  # noqa: E402
from flowfill_jax.config_base import base_config  # noqa: E402
from flowfill_jax.structure_stage import StructureStage  # noqa: E402
from flowfill_jax.texture_stage import TextureStage  # noqa: E402


def tiny_config():
  c = base_config()
  c.data.image_size = 32
  s = c.model.structure
  s.prior_size, s.levels, s.steps, s.hidden, s.encoder_cnum = 8, 2, 2, 8, 8
  s.scan_unroll = 1
  t = c.model.texture
  t.base_features, t.num_res_blocks, t.disc_features = 8, 1, (8, 16, 16, 16)
  return c


def run_steps(stage, mesh, batch, key, frozen=None):
  repl, batch_sh = sharding.replicated(mesh), sharding.batch_sharding(mesh)
  batch = jax.device_put(batch, batch_sh)
  state = jax.jit(stage.init, out_shardings=repl)(jax.random.key(1), batch)
  step = jax.jit(stage.train_step, in_shardings=(repl, batch_sh, repl, repl),
                 out_shardings=(repl, repl), donate_argnums=0)
  state, metrics = step(state, batch, key, frozen)
  return state, metrics


def main():
  n = int(sys.argv[1])
  mesh = sharding.make_mesh(n)
  config = tiny_config()
  batch = {"image": real_crops(8, 32), "mask": box_masks(8, 32)}
  key = jax.random.key(0)
  s_state, s_metrics = run_steps(StructureStage(config), mesh, batch, key)
  texture = TextureStage(config, workdir="")
  frozen = jax.device_put({"params": s_state.params, "constants": s_state.constants},
                          sharding.replicated(mesh))
  t_state, t_metrics = run_steps(texture, mesh, batch, key, frozen)
  digest = lambda tree: [float(np.sum(np.abs(np.asarray(x, np.float64))))
                         for x in jax.tree.leaves(tree)]
  print(json.dumps({
      "devices": mesh.size,
      "structure_loss": float(s_metrics["bits_per_dim"]),
      "structure_params": digest(s_state.params),
      "texture_l1": float(t_metrics["l1"]), "texture_d_loss": float(t_metrics["d_loss"]),
      "texture_params": digest((t_state.g_params, t_state.d_params)),
  }))


if __name__ == "__main__":
  main()
