"""Export a trained run for inference: one small folder that `Inpainter.from_workdir`,
`sample --workdir` and `demo --workdir` load like a run.

  python -m flowfill_jax.export --workdir runs/photos --out flowfill_jax/weights/photos

Writes `config.json`, `weights.msgpack` (E, f and G; no optimiser state, no D; parameters
as float16 unless `--full-precision`) and `examples/` (a few images of the run's
evaluation split, for the web demo). The package's shipped model was written by it.
"""

import os

from absl import app, flags

from flowfill_jax import visualize
from flowfill_jax.cli import exit_on_user_error, parse_dashed_flags
from flowfill_jax.errors import UserError
from flowfill_jax.metric_logging import log, setup_logging

FLAGS = flags.FLAGS
NUM_EXAMPLES = 8


def define_flags() -> None:
  flags.DEFINE_string("workdir", None, "A run written by flowfill_jax.train.")
  flags.DEFINE_string("out", None, "Folder to write the exported model to.")
  flags.DEFINE_bool("full_precision", False, "Store parameters as float32 (twice the size).")
  flags.DEFINE_integer("examples", NUM_EXAMPLES, "Evaluation images to include (0: none).")
  flags.mark_flags_as_required(["workdir", "out"])


def export(workdir: str, out: str, *, half: bool = True, examples: int = NUM_EXAMPLES) -> str:
  """→ the weights file written. Examples are skipped, with a note, if the run's data
  cannot be read here."""
  from flowfill_jax.datasets import builders
  from flowfill_jax.inference import Inpainter
  if os.path.exists(out) and not os.path.isdir(out):
    raise UserError(f"--out {out} exists and is not a folder")
  if not os.path.isdir(workdir):
    raise UserError(f"--workdir {workdir} is not a folder")
  model = Inpainter.from_workdir(workdir)
  images = []
  if examples > 0:
    try:
      images = builders.spread_images(model.config.data, examples)
    except UserError as e:
      log.warning("no examples exported: %s", e)
  path = model.export(out, half=half)
  for i, image in enumerate(images):
    visualize.write_png(os.path.join(out, "examples", f"example_{i:02d}.png"), image)
  log.info("exported %s (%s) → %s: %.1f MB, %d example image(s)", workdir, model.checkpoint_steps,
           out, os.path.getsize(path) / 1e6, len(images))
  return path


def check_flags() -> None:
  if FLAGS.examples < 0:
    raise UserError(f"--examples must be at least 0, got {FLAGS.examples}")


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  setup_logging()
  exit_on_user_error(check_flags)
  exit_on_user_error(export, FLAGS.workdir, FLAGS.out, half=not FLAGS.full_precision,
                     examples=FLAGS.examples)


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=parse_dashed_flags)
