"""Train Flow-Fill: `python -m flowfill_jax.train --config configs/demo.py --workdir runs/demo`.

`main` only parses flags; `train_and_evaluate(config, workdir)` runs the stages the
config names (stage 1, the structure flow; stage 2, the texture GAN), each with
the same loop: sharded jitted steps, periodic logs, validation, sample sheets and
orbax checkpoints. Started again on the same workdir, a run resumes where it
stopped, data position and PRNG state included.
"""

import dataclasses
import functools
import itertools
import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import jax
import ml_collections
import numpy as np
from absl import app, flags
from jax.sharding import Mesh
from ml_collections import config_flags

from flowfill_jax import (
  compilation,
  datasets,
  factory,
  fileio,
  input_pipeline,
  legacy,
  sharding,
  visualize,
)
from flowfill_jax.checkpoints import StageCheckpoints, abstract_like
from flowfill_jax.cli import exit_on_user_error, parse_dashed_flags
from flowfill_jax.errors import UserError
from flowfill_jax.metric_logging import MetricWriter, Progress, format_eta, setup_logging

if TYPE_CHECKING:
  from flowfill_jax.structure_stage import StructureStage
  from flowfill_jax.texture_stage import TextureStage

log = logging.getLogger("flowfill_jax")

STAGE_IDS = {"structure": 1, "texture": 2}
# Fields that may change between a run and its resumption (paths, devices, step counts,
# logging, sample sheets, sampling defaults); anything else differing (a learning rate, a batch
# size, which changes the data order, a loss weight) means the workdir holds another run.
_STAGE_RESUMABLE = ("steps", "log_every", "checkpoint_every", "keep_checkpoints", "eval_every",
                    "eval_batches", "sample_every", "num_samples", "sample_inputs")
RESUMABLE_FIELDS = ("data.data_dir", "data.manual_dir", "data.num_workers", "data.mask_dir",
                    "mesh", "stages", "sample") + tuple(
                        f"{stage}.{field}" for stage in STAGE_IDS for field in _STAGE_RESUMABLE)


def _resumable(key: str) -> bool:
  return any(key == f or key.startswith(f + ".") for f in RESUMABLE_FIELDS)


def stage_names(stages: str | Sequence[str]) -> list[str]:
  """config.stages as a list: a tuple from the config file, or from the command line
  comma-separated names (`--config.stages=texture`, `--config.stages=structure,texture`,
  which ml_collections may hand over as a string or a one-element tuple)."""
  items = [stages] if isinstance(stages, str) else list(stages)
  names = [n.strip() for item in items for n in str(item).split(",") if n.strip()]
  unknown = [n for n in names if n not in STAGE_IDS]
  if unknown or not names:
    raise UserError(f"config.stages={stages!r}: expected 'structure', 'texture' or both, "
                    "comma-separated")
  return names


def make_stage(name: str, config: ml_collections.ConfigDict,
               workdir: str) -> "StructureStage | TextureStage":
  if name == "structure":
    from flowfill_jax.structure_stage import StructureStage
    return StructureStage(config)
  if name == "texture":
    from flowfill_jax.texture_stage import TextureStage
    return TextureStage(config, workdir)
  raise UserError(f"unknown stage {name!r} in config.stages: expected 'structure' or 'texture'")


def _flatten(d: dict, prefix=""):
  for k, v in d.items():
    key = f"{prefix}{k}"
    if isinstance(v, dict):
      yield from _flatten(v, key + ".")
    else:
      yield key, v


def _config_differences(saved: dict, current: dict) -> list[str]:
  normal = lambda v: list(v) if isinstance(v, tuple) else v
  a, b = dict(_flatten(saved)), dict(_flatten(current))
  keys = sorted(set(a) | set(b))
  return [k for k in keys if not _resumable(k) and normal(a.get(k)) != normal(b.get(k))]


def check_config(config: ml_collections.ConfigDict, names: list[str]) -> Mesh:
  """Refuse, before the workdir is bound to this config, what would fail only once training
  starts: a mistyped dataset, a batch the mesh cannot split. Returns the mesh."""
  if config.data.name not in datasets.BUILDERS:
    raise UserError(f"config.data.name={config.data.name!r}: expected one of "
                    f"{sorted(datasets.BUILDERS)}")
  try:
    mesh = sharding.make_mesh(config.mesh.num_devices or None)
  except ValueError as e:
    raise UserError(f"config.mesh.num_devices: {e}") from None
  for name in names:
    batch_size = config[name].batch_size
    if batch_size < 1:
      raise UserError(f"config.{name}.batch_size={batch_size}: must be at least 1")
    try:
      sharding.check_batch_size(batch_size, mesh)
    except ValueError as e:
      raise UserError(f"config.{name}.batch_size={batch_size}: {e}") from None
  return mesh


def prepare_workdir(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Check the workdir is writable and holds no other run; save the config beside it."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise UserError(f"workdir {workdir} is a file, not a folder")
  try:
    os.makedirs(workdir, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=workdir):
      pass
  except OSError as e:
    raise UserError(f"cannot write to workdir {workdir}: {e.strerror or e}") from None
  path = os.path.join(workdir, "config.json")
  current = json.loads(config.to_json_best_effort())
  if os.path.exists(path):
    with open(path) as f:
      saved = legacy.upgrade_config(json.load(f))
    differ = _config_differences(saved, current)
    if differ:
      raise UserError(f"workdir {workdir} holds a run of a different config "
                      f"({', '.join(differ[:6])}{' …' if len(differ) > 6 else ''} differ); "
                      f"use a new --workdir or the config saved in {path}")
  if jax.process_index() == 0:
    fileio.write_text(path, json.dumps(current, indent=2))


def stage_data_config(config: ml_collections.ConfigDict,
                      batch_size: int) -> ml_collections.ConfigDict:
  data = ml_collections.ConfigDict(config.data.to_dict())
  data.batch_size = batch_size
  return data


class TrainingDiverged(UserError, FloatingPointError):
  """A non-finite loss: reported in one line like bad input, since the remedy (a lower learning
  rate, other data) is the user's, and still a FloatingPointError to code that catches one."""


def _mean_metrics(pending: list[dict], first_step: int) -> dict:
  """Host-side means of the metrics of several steps; a non-finite loss stops the run."""
  host = jax.device_get(pending)
  for i, m in enumerate(host):
    bad = [k for k, v in m.items() if not np.all(np.isfinite(v))]
    if bad:
      raise TrainingDiverged(
          f"non-finite {', '.join(bad)} at step {first_step + i + 1}; the run stops "
          "here and its last good checkpoint stays")
  return {k: float(np.mean([m[k] for m in host])) for k in host[0]}


@dataclasses.dataclass(frozen=True)
class StageContext:
  """What validation and sample sheets read besides the train state, fixed for a stage."""
  stage: "StructureStage | TextureStage"
  config: ml_collections.ConfigDict
  data_config: ml_collections.ConfigDict  # the data section at the stage's batch size
  mesh: Mesh
  eval_step: Callable
  sample_rows: Callable
  frozen: dict | None  # stage 1's variables for stage 2; None for stage 1
  eval_key: jax.Array
  sample_key: jax.Array

  def eval_batches(self) -> Iterator[dict]:
    """The held-out split in a fixed order, the same at every evaluation."""
    return input_pipeline.create_iterator(self.data_config, self.mesh,
                                          split=self.config.data.eval_split,
                                          seed=self.config.seed, train=False)


def evaluate(ctx: StageContext, state: Any) -> dict:
  """Mean per-example validation metrics over the first `eval_batches` held-out batches."""
  sums, count = {}, 0.0
  for batch in itertools.islice(ctx.eval_batches(), ctx.stage.stage_config.eval_batches):
    valid = np.asarray(batch.pop("valid", np.ones(ctx.data_config.batch_size)), np.float64)
    for k, v in jax.device_get(ctx.eval_step(state, batch, ctx.eval_key, ctx.frozen)).items():
      sums[k] = sums.get(k, 0.0) + float(np.sum(np.asarray(v, np.float64) * valid))
    count += valid.sum()
  return {f"val_{k}": v / max(count, 1.0) for k, v in sums.items()}


def write_sample_sheet(ctx: StageContext, state: Any, path: str) -> None:
  """One row per held-out input: input, samples…, ground truth."""
  batch = next(iter(ctx.eval_batches()))
  batch.pop("valid", None)
  n = ctx.stage.stage_config.sample_inputs
  columns = [np.asarray(c)[:n] for c in
             jax.device_get(ctx.sample_rows(state, batch, ctx.sample_key, ctx.frozen))]
  if jax.process_index() == 0:
    visualize.write_png(path, visualize.grid(list(zip(*columns))))


def _due(done: int, last: bool, every: int) -> bool:
  """Whether a periodic job (log, eval, sheet, checkpoint) runs after step `done`."""
  return last or bool(every and done % every == 0)


def run_stage(stage: "StructureStage | TextureStage", config: ml_collections.ConfigDict,
              workdir: str, mesh: Mesh) -> dict:
  """Train one stage to `stage_config.steps`, resuming from its latest checkpoint."""
  sc = stage.stage_config
  stage_dir = os.path.join(workdir, stage.name)
  checkpoints = StageCheckpoints(os.path.join(stage_dir, "checkpoints"), sc.keep_checkpoints,
                                 create=True)
  data_config = stage_data_config(config, sc.batch_size)
  repl, batch_sh = sharding.replicated(mesh), sharding.batch_sharding(mesh)
  stage_key = jax.random.fold_in(jax.random.key(config.seed), STAGE_IDS[stage.name])
  key, init_key, eval_key, sample_key = jax.random.split(stage_key, 4)

  latest = checkpoints.latest_step()
  if latest is not None and latest >= sc.steps:
    log.info("%s: already trained to step %d", stage.name, latest)
    checkpoints.close()
    return {}
  start = latest or 0
  batches = input_pipeline.create_iterator(data_config, mesh, split=config.data.train_split,
                                           seed=config.seed, start_step=start, train=True)
  if latest is None:
    first = next(batches)
    batches = itertools.chain([first], batches)
    state = compilation.jit(stage.init, out_shardings=repl)(init_key, first)
  else:
    abstract = jax.eval_shape(stage.init, init_key, factory.input_shapes(config, data_config.batch_size))
    state = legacy.restore(checkpoints.restore, abstract_like(abstract, repl),
                           checkpoints.saved_tree(latest))
    log.info("%s: resumed from step %d", stage.name, latest)

  shardings = (repl, batch_sh, repl, repl)
  train_step = compilation.jit(stage.train_step, in_shardings=shardings,
                               out_shardings=(repl, repl), donate_argnums=0)
  ctx = StageContext(
      stage, config, data_config, mesh,
      eval_step=compilation.jit(stage.eval_step, in_shardings=shardings, out_shardings=repl),
      sample_rows=compilation.jit(stage.sample_rows, in_shardings=shardings, out_shardings=repl),
      frozen=stage.frozen_variables(repl), eval_key=eval_key, sample_key=sample_key)
  writer = MetricWriter(stage_dir, enabled=jax.process_index() == 0)
  progress = Progress(start, sc.steps, sc.batch_size)
  pending, summary = [], {}
  if latest is None and sc.eval_every:  # the starting point, for comparison
    val = evaluate(ctx, state)
    writer.write(0, val)
    log.info("%s step 0 | %s", stage.name, " ".join(f"{k} {v:.4f}" for k, v in val.items()))
  for step in range(start, sc.steps):
    state, metrics = train_step(state, next(batches), key, ctx.frozen)
    pending.append(metrics)
    done = step + 1
    last = done == sc.steps
    due = functools.partial(_due, done, last)
    if due(sc.log_every) or due(sc.checkpoint_every):
      summary = _mean_metrics(pending, done - len(pending))
      pending = []
      rates = progress.update(done)
      writer.write(done, {**summary, **rates})
      log.info("%s step %d/%d | %s %.4f | lr %.2e | %.1f img/s | ETA %s", stage.name, done,
               sc.steps, stage.loss_name, summary[stage.loss_name], summary.get("lr", math.nan),
               rates["images_per_s"], format_eta(rates["eta_s"]))
    if due(sc.checkpoint_every):  # first: a run stopped during the evaluation keeps the step
      checkpoints.save(done, state)
    if due(sc.eval_every):
      val = evaluate(ctx, state)
      writer.write(done, val)
      summary.update(val)
      log.info("%s step %d | %s", stage.name, done,
               " ".join(f"{k} {v:.4f}" for k, v in val.items()))
    if due(sc.sample_every):
      path = os.path.join(stage_dir, "samples", f"step_{done:07d}.png")
      write_sample_sheet(ctx, state, path)
      log.info("%s step %d | samples: %s", stage.name, done, path)
  checkpoints.close()
  writer.close()
  return summary


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Run every stage of `config.stages` in order; returns the last stage's last metrics."""
  names = stage_names(config.stages)
  mesh = check_config(config, names)
  prepare_workdir(config, workdir)
  log.info("mesh: %d device(s) %s on %d process(es)", mesh.size, jax.devices()[0].platform,
           jax.process_count())
  results = {}
  for name in names:
    results[name] = run_stage(make_stage(name, config, workdir), config, workdir, mesh)
  return results


FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defined when run as a program only (absl flags are global; sample.py has a --workdir)."""
  config_flags.DEFINE_config_file("config", None, "Path to a config file (configs/*.py).",
                                  lock_config=True)
  flags.DEFINE_string("workdir", None, "Where checkpoints, logs and samples go.")
  flags.DEFINE_bool("distributed", False,
                    "Call jax.distributed.initialize() first: one process per host (GPU/TPU "
                    "clusters under SLURM, Open MPI, Kubernetes or a TPU pod are detected).")
  flags.DEFINE_string("coordinator_address", None,
                      "host:port of process 0, for a launch without such a cluster manager "
                      "(implies --distributed; with --num_processes and --process_id).")
  flags.DEFINE_integer("num_processes", None, "Processes of a --coordinator_address launch.")
  flags.DEFINE_integer("process_id", None, "This process's index in a --coordinator_address "
                       "launch (0 … num_processes − 1).")
  flags.mark_flags_as_required(["config", "workdir"])


def start_distributed(auto: bool, coordinator_address: str | None, num_processes: int | None,
                      process_id: int | None) -> None:
  """jax.distributed.initialize before any computation: from the cluster manager's environment
  (`auto`), or from an explicit coordinator address, process count and index."""
  explicit = (coordinator_address, num_processes, process_id)
  if any(v is not None for v in explicit):
    if None in explicit:
      raise UserError("--coordinator_address, --num_processes and --process_id go together")
    assert num_processes is not None and process_id is not None
    if not 0 <= process_id < num_processes:
      raise UserError(f"--process_id={process_id} is not in 0 … {num_processes - 1}")
    _initialize(coordinator_address, num_processes, process_id)
  elif auto:
    _initialize()


def _initialize(*args) -> None:
  try:
    jax.distributed.initialize(*args)
  except (ValueError, RuntimeError) as e:  # no cluster found, or JAX already started
    found = "" if args else (" (no SLURM, Open MPI, Kubernetes or Cloud TPU cluster found: "
                             "name the coordinator with --coordinator_address, "
                             "--num_processes and --process_id)")
    raise UserError(f"jax.distributed.initialize failed{found}: {e}") from None


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  exit_on_user_error(start_distributed, FLAGS.distributed, FLAGS.coordinator_address,
                     FLAGS.num_processes, FLAGS.process_id)
  setup_logging(progress=jax.process_index() == 0)  # one progress log per job
  exit_on_user_error(train_and_evaluate, FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=parse_dashed_flags)
