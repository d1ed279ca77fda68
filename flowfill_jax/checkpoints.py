"""Orbax checkpoints of one training stage: periodic, atomic, the last N kept.

Orbax writes each step into a temporary folder and renames it when complete, so
a run killed mid-save leaves the previous checkpoint as the latest. The PRNG
state and the data position are both functions of the step (the run's key is
folded with the step; the input pipeline restarts from a step), so the train
state alone resumes a run exactly.
"""

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


class StageCheckpoints:
  """Save and restore one stage's train state under `directory`.

  `create`: make the folder now (training). Readers leave it alone, so restoring from a
  read-only or mistyped path creates nothing there.
  """

  def __init__(self, directory: str, keep: int = 3, create: bool = False):
    self.directory = os.path.abspath(directory)
    self.manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=create))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state: Any) -> None:
    self.manager.save(step, args=ocp.args.StandardSave(state), force=True)

  def restore(self, abstract_state: Any, step: int | None = None) -> Any:
    """Restore onto `abstract_state` (ShapeDtypeStructs carrying their shardings)."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    return self.manager.restore(step, args=ocp.args.StandardRestore(abstract_state))

  def restore_subtree(self, abstract: dict, step: int | None = None) -> dict:
    """Only the top-level fields named in `abstract` ({field: abstract tree}) of a saved
    state, e.g. `{"g_params": ...}` of stage 2's: orbax partial restore, nothing else read."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    args = ocp.args.PyTreeRestore(
        item=abstract, restore_args=ocp.checkpoint_utils.construct_restore_args(abstract),
        partial_restore=True)
    return dict(self.manager.restore(step, args=args))

  def saved_tree(self, step: int | None = None) -> Any:
    """The saved state's tree (dicts and lists, array metadata at the leaves), read without
    reading any array: what a checkpoint holds, to restore it onto the right layout."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    reader = ocp.CheckpointManager(self.directory, item_handlers=ocp.PyTreeCheckpointHandler(),
                                   options=ocp.CheckpointManagerOptions(create=False))
    try:
      metadata = reader.item_metadata(step)
    finally:
      reader.close()
    return getattr(metadata, "tree", metadata)

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


def abstract_like(tree: Any, sharding: jax.sharding.Sharding | None) -> Any:
  """ShapeDtypeStructs of `tree` (arrays or shapes) placed with `sharding`."""
  return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding),
                      tree)
