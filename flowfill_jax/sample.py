"""Diverse inpainting from the command line.

  python -m flowfill_jax.sample --workdir runs/demo --image photo.png --mask mask.png \
      --out completions/ --num 8 [--rank] [--transfer-from target.png]

Without `--workdir`, the model that ships inside the package (64², trained on the offline
photo corpus, configs/photos.py); `--workdir` also takes a model written by `flowfill_jax.export`.

(flags take dashes or underscores: --invert-mask = --invert_mask)

Masks are single-channel images, white (255) = hole, thresholded at 50%
(`--invert-mask` for white = known). Without `--mask`, the image's transparent
pixels (alpha below 50%, as an editor's eraser leaves them) are the hole.
Images of any size are resized to the model's size for the network and the
completion is resized back; the known pixels of the output are exactly the input's. A mask with no hole, or one that covers the
whole image, is refused (nothing to fill / nothing to condition on).

Writes `sample_00.png …` (ranked most likely first with `--rank`), `grid.png`
(input, mask, samples) and `samples.json` (stage-1 log-likelihood of each sample).

Batch mode, for evaluation: `--input-dir DIR` (every image there, resized to the
model's size) with the fixed evaluation masks of `--mask-bucket` (or `--mask-dir`
with one mask per image, same file names), writing `OUT/<name>_s<k>.png` and
`OUT/<name>_mask.png`, jitted once and batched (`--batch-size`).
"""

import dataclasses
import json
import os
import time

import numpy as np
from absl import app, flags

from flowfill_jax import fileio, resize, visualize
from flowfill_jax.cli import exit_on_user_error, parse_dashed_flags
from flowfill_jax.errors import UserError
from flowfill_jax.image_io import read_image, read_mask, read_transparent_hole
from flowfill_jax.metric_logging import setup_logging
from flowfill_jax.user_input import check_hole

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defined when run as a program only (absl flags are global; train.py has a --workdir)."""
  flags.DEFINE_string("workdir", None, "A run written by flowfill_jax.train or an exported model "
                      "(default: the model shipped in the package).")
  flags.DEFINE_string("image", None, "The image to complete (PNG/JPEG, any size).")
  flags.DEFINE_string("mask", None, "Mask image of the same size: white = hole (1 = hole). "
                      "Without it, the image's transparent pixels are the hole.")
  flags.DEFINE_string("out", None, "Output folder (created).")
  flags.DEFINE_integer("num", 8, "Number of completions.")
  flags.DEFINE_float("temperature", None, "Sampling temperature τ (default: the run's sample.temperature).")
  flags.DEFINE_integer("seed", 0, "Same seed, same files.")
  flags.DEFINE_bool("rank", False, "Order samples by stage-1 likelihood, most likely first.")
  flags.DEFINE_bool("invert_mask", False, "The mask's white means known, not hole.")
  flags.DEFINE_string("transfer_from", None,
                      "Semantic transfer: fill the hole with this target image's content.")
  flags.DEFINE_string("input_dir", None, "Batch mode: complete every image in this folder.")
  flags.DEFINE_string("mask_bucket", "random", "Batch mode: fixed evaluation masks of this "
                      "hole-ratio bucket (20-40, 40-60, random).")
  flags.DEFINE_string("mask_dir", None, "Batch mode: masks with the images' file names instead.")
  flags.DEFINE_integer("batch_size", 8, "Batch mode: images per jitted call.")
  flags.mark_flags_as_required(["out"])


def check_flags() -> None:
  """Numbers and the output path, checked before anything is read or written."""
  if FLAGS.num < 1:
    raise UserError(f"--num must be at least 1, got {FLAGS.num}")
  if FLAGS.batch_size < 1:
    raise UserError(f"--batch-size must be at least 1, got {FLAGS.batch_size}")
  if FLAGS.temperature is not None:  # inference imports JAX: only when there is a τ to check
    from flowfill_jax.user_input import check_temperature
    check_temperature(FLAGS.temperature, "--temperature")
  path = os.path.abspath(FLAGS.out)
  while path != os.path.dirname(path):
    if os.path.exists(path) and not os.path.isdir(path):
      raise UserError(f"--out {FLAGS.out}: {path} exists and is not a folder")
    path = os.path.dirname(path)


def check_mask(mask: np.ndarray, image: np.ndarray, path: str) -> None:
  if mask.shape != image.shape[:2]:
    raise UserError(f"mask {path} is {mask.shape[1]}×{mask.shape[0]} but the image is "
                    f"{image.shape[1]}×{image.shape[0]}: they must be the same size")
  check_hole(mask, f"mask {path}", "white = hole; use --invert-mask if white means known")


@dataclasses.dataclass(frozen=True)
class Sampling:
  """How completions are drawn, for one image and for a folder alike."""
  num: int = 8  # completions per image
  temperature: float | None = None  # None: the run's sample.temperature
  seed: int = 0
  invert_mask: bool = False  # the masks' white means known, not hole

  @classmethod
  def from_flags(cls) -> "Sampling":
    return cls(num=FLAGS.num, temperature=FLAGS.temperature, seed=FLAGS.seed,
               invert_mask=FLAGS.invert_mask)


def run(workdir: str | None, image_path: str, mask_path: str | None, out_dir: str,
        sampling: Sampling | None = None, *, rank: bool = False,
        transfer_from: str | None = None) -> dict:
  """Compute every output first, then write them: bad input leaves no partial output.
  Without `mask_path`, the image's transparent pixels are the hole."""
  from flowfill_jax.inference import Inpainter  # after argument checks: JAX starts slowly
  sampling = sampling or Sampling()
  image = read_image(image_path)
  mask = _hole_of(image, image_path, mask_path, sampling.invert_mask)
  target = read_image(transfer_from) if transfer_from else None
  if target is not None and target.shape != image.shape:
    raise UserError(f"transfer target {transfer_from} is {target.shape[1]}×{target.shape[0]} "
                    f"but the image is {image.shape[1]}×{image.shape[0]}")
  model = Inpainter.from_workdir(workdir)

  start = time.perf_counter()
  if target is not None:
    samples = model.transfer(target, image, mask)[None]
    log_probs = np.full((1,), np.nan)
  else:
    samples, log_probs = model.inpaint(image, mask, num=sampling.num,
                                       temperature=sampling.temperature, seed=sampling.seed,
                                       return_log_prob=True)
  seconds = time.perf_counter() - start
  order = np.argsort(-log_probs) if rank else np.arange(len(samples))
  samples, log_probs = samples[order], log_probs[order]

  os.makedirs(out_dir, exist_ok=True)
  records = sample_records(log_probs)
  for record, sample in zip(records, samples):
    visualize.write_png(os.path.join(out_dir, record["file"]), sample)
  shown = visualize.grey_holes(image, mask[..., None])
  visualize.write_png(os.path.join(out_dir, "grid.png"),
                      visualize.grid([[shown, mask[..., None], *samples]]))
  tau = model.temperature if sampling.temperature is None else sampling.temperature
  summary = {"image": image_path, "mask": mask_path or "the image's transparent pixels",
             "seed": sampling.seed, "ranked": rank,
             "temperature": tau, "seconds": seconds, "transfer_from": transfer_from,
             "out_of_range": sum(not r["in_range"] for r in records), "samples": records}
  fileio.write_text(os.path.join(out_dir, "samples.json"), json.dumps(summary, indent=2))
  return summary


def _hole_of(image: np.ndarray, image_path: str, mask_path: str | None,
             invert_mask: bool) -> np.ndarray:
  """The mask file's hole, or without one the image's transparent pixels."""
  if mask_path is not None:
    mask = read_mask(mask_path, invert_mask)
    check_mask(mask, image, mask_path)
    return mask
  if invert_mask:
    raise UserError("--invert-mask applies to a --mask file; none was given")
  mask = read_transparent_hole(image_path)
  if mask is None:
    raise UserError(f"no --mask given and image {image_path} has no transparency to mark the "
                    "hole: give --mask (white = hole) or make the hole transparent")
  check_hole(mask, f"the transparency of {image_path}",
             "erase the region to fill to transparent, or give --mask")
  return mask


def sample_records(log_probs: np.ndarray) -> list[dict]:
  """One record per sample for samples.json: its file and log-prob (None without one, e.g. a
  transfer). A prior that left the data range has log-prob -inf (`flow.usable_priors`): it is
  `in_range: false`, with no figure, and G completed it from the smooth fill instead."""
  records = []
  for i, lp in enumerate(log_probs):
    in_range = not np.isneginf(lp)
    records.append({"file": f"sample_{i:02d}.png", "in_range": bool(in_range),
                    "log_prob_nats": float(lp) if in_range and not np.isnan(lp) else None})
  return records


def run_folder(workdir: str | None, input_dir: str, out_dir: str,
               sampling: Sampling | None = None, *, bucket: str = "random",
               mask_dir: str | None = None, batch_size: int = 8) -> dict:
  """Complete every image of a folder under fixed masks (`sampling`: one completion each by
  default); returns counts and images/s."""
  from tqdm import tqdm

  from flowfill_jax import masks as masks_lib
  from flowfill_jax.datasets.builders import list_images
  from flowfill_jax.inference import Inpainter
  sampling = sampling or Sampling(num=1)
  num, seed = sampling.num, sampling.seed
  if not os.path.isdir(input_dir):
    raise UserError(f"input folder {input_dir} does not exist")
  files = list_images(input_dir)
  if not files:
    raise UserError(f"no images (png/jpg/bmp/webp) in {input_dir}")
  mask_files = (None if mask_dir is None else
                [os.path.join(mask_dir, os.path.basename(f)) for f in files])
  _check_readable(files, mask_files, sampling.invert_mask)
  model = Inpainter.from_workdir(workdir)
  size = model.size
  if mask_files is None:
    fixed = masks_lib.eval_masks(bucket, len(files), size, seed)
  os.makedirs(out_dir, exist_ok=True)
  done, start = 0, None
  for first in tqdm(range(0, len(files), batch_size), unit="batch", desc="completing"):
    chunk = files[first:first + batch_size]
    images = np.stack([resize.image(read_image(f), size) for f in chunk])
    if mask_files is None:
      mask = fixed[first:first + len(chunk)].astype(np.float32)
    else:
      mask = np.stack([resize.mask(read_mask(m, sampling.invert_mask), size)
                       for m in mask_files[first:first + len(chunk)]]).astype(np.float32)
    if len(chunk) < batch_size:  # pad to the jitted shape
      pad = batch_size - len(chunk)
      images = np.concatenate([images, np.repeat(images[-1:], pad, 0)])
      mask = np.concatenate([mask, np.repeat(mask[-1:], pad, 0)])
    out = model.inpaint(images, mask, num=num, temperature=sampling.temperature,
                        seed=seed + first)
    if start is None:  # the first batch pays for compilation
      start = time.perf_counter()
    else:
      done += len(chunk)
    for f, sample_set, m in zip(chunk, out, mask):
      name = os.path.splitext(os.path.basename(f))[0]
      visualize.write_png(os.path.join(out_dir, f"{name}_mask.png"), m[..., None])
      for k, sample in enumerate(sample_set):
        visualize.write_png(os.path.join(out_dir, f"{name}_s{k}.png"), sample)
  rate = done / (time.perf_counter() - start) if done and start is not None else float("nan")
  return {"images": len(files), "samples_per_image": num, "images_per_s": rate}


def _check_readable(files: list[str], mask_files: list[str] | None, invert_mask: bool) -> None:
  """Decode every image (and mask) once before the model loads: a bad file in a folder of a
  thousand is reported at once, not after hours, with no outputs half written."""
  for i, f in enumerate(files):
    image = read_image(f)
    if mask_files is not None:
      check_mask(read_mask(mask_files[i], invert_mask), image, mask_files[i])


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  setup_logging()
  exit_on_user_error(check_flags)
  if FLAGS.input_dir:
    summary = exit_on_user_error(
        run_folder, FLAGS.workdir, FLAGS.input_dir, FLAGS.out, Sampling.from_flags(),
        bucket=FLAGS.mask_bucket, mask_dir=FLAGS.mask_dir, batch_size=FLAGS.batch_size)
    print(f"completed {summary['images']} image(s) × {summary['samples_per_image']} into "
          f"{FLAGS.out} at {summary['images_per_s']:.2f} images/s after compilation")
    return
  if not FLAGS.image:
    raise app.UsageError("give --image (and --mask, unless the hole is transparent), or "
                         "--input-dir for batch mode")
  summary = exit_on_user_error(
      run, FLAGS.workdir, FLAGS.image, FLAGS.mask, FLAGS.out, Sampling.from_flags(),
      rank=FLAGS.rank, transfer_from=FLAGS.transfer_from)
  n = len(summary["samples"])
  print(f"wrote {n} completion(s), grid.png and samples.json to {FLAGS.out} "
        f"({summary['seconds']:.2f} s including compilation)")
  if summary["out_of_range"]:
    print(f"{summary['out_of_range']} of {n} structural priors left the data range (log-prob -inf"
          f"{', ranked last' if FLAGS.rank else ''}): G completed those from the smooth fill; "
          "a lower --temperature makes this rarer")


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=parse_dashed_flags)
