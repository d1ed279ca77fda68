"""This package against its PyTorch twin, on the same shapes and machine, in one table.

The twin (`../shared/bench/torch_twin.py --e-halved`: the paper-size model in PyTorch, E with
DeepFill's halved gated-conv widths as here) runs in its own venv; this script starts one worker
per framework, builds the models and compiles every row in each (compile and first-call times
are rows of their own), then times the rows in alternating rounds (ours, then PyTorch eager and
torch.compile) so that a noisy shared machine hits both sides alike, and prints the median of the
rounds. Rows (paper size: 256² images, 64² prior, L = 4, K = 10; random weights, random images,
the twin's ~40% box-and-stripe holes):

  * stage-1 NLL training step, batch 16 (E + f forward and backward, Adam);
  * stage-1 sampling (E + f⁻¹ at τ = 0.8), batch 1 and 16;
  * G forward (bicubic upsampling of the prior, G, composite), batch 1 and 16;
  * stage-2 training step, batch 8: the training prior (E, f on the truth, part of z
    replaced by noise, f⁻¹; no gradient), G, D's step (real and fake, non-saturating loss),
    G's step (adversarial + hole-normalised ℓ1), Adam on both; D is the spectrally
    normalised PatchGAN of `flowfill_jax/models/discriminator.py`, built in PyTorch here;
  * both stages, batch 1 and 16 (the paper's Table 3 work).

Both sides do the same convolutions (GFLOP per image of each side printed: XLA's count includes
elementwise work, PyTorch's FlopCounterMode counts convolutions and matmuls only); ours also
returns each prior's log-density, which the twin does not compute. Make the twin's venv once:

  python3 -m venv ../.venv-twin && ../.venv-twin/bin/pip install torch numpy
  python experiments/bench_vs_torch.py [--twin-python ../.venv-twin/bin/python]
      [--rounds 3] [--seconds 2] [--rows s1_train s1_sample ...] [--no-compile] [--quick]
      [--out experiments/bench_vs_torch_cpu.txt]
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_TWIN = ROOT.parent / "shared" / "bench" / "torch_twin.py"
DEFAULT_TWIN_PYTHON = ROOT.parent / ".venv-twin" / "bin" / "python"
TEMPERATURE = 0.8
IMAGE, PRIOR = 256, 64

# (key, batch, what): the table's rows, in order.
ROWS = [
    ("s1_train", 16, "stage-1 NLL training step"),
    ("s1_sample", 1, "stage-1 sampling (E + f⁻¹)"),
    ("s1_sample", 16, "stage-1 sampling (E + f⁻¹)"),
    ("g_fwd", 1, "G forward"),
    ("g_fwd", 16, "G forward"),
    ("s2_train", 8, "stage-2 training step (G + D)"),
    ("both", 1, "both stages"),
    ("both", 16, "both stages"),
]
TAG = "@@ "  # protocol lines on a worker's stdout


def twin_masks(batch):
  """The twin's `make_batch` holes as NHWC numpy: a box plus a stripe, shifted per image."""
  import numpy as np
  mask = np.zeros((batch, IMAGE, IMAGE, 1), np.float32)
  for b in range(batch):
    o = (17 * b) % 48
    mask[b, 40 + o:190 + o // 2, 30:170] = 1.0
    mask[b, 10:250, 200 - o:230 - o] = 1.0
  return mask


def cpu_name():
  for line in Path("/proc/cpuinfo").read_text().splitlines():
    if line.startswith("model name"):
      return line.split(":", 1)[1].strip()
  return platform.processor() or platform.machine()


def time_round(call, seconds):
  """Mean seconds of `call()` over at least `seconds` (one call when a call is longer)."""
  n, start = 0, time.perf_counter()
  while n < 1 or time.perf_counter() - start < seconds:
    call()
    n += 1
  return (time.perf_counter() - start) / n


# ---------------------------------------------------------------------------------------------
# The JAX worker: this package's paper-size stages (configs/celeba.py's model).
# ---------------------------------------------------------------------------------------------


def jax_variants(rows):
  """{row name: {"ours": (call, first-call s, GFLOP/image)}} and the setup facts."""
  sys.path.insert(0, str(HERE))
  import benchlib
  import jax
  import jax.numpy as jnp
  import numpy as np

  from flowfill_jax.config_base import base_config
  from flowfill_jax.structure_stage import StructureStage
  from flowfill_jax.texture_stage import TextureStage

  config = base_config()
  config.data.image_size = IMAGE
  stage1, stage2 = StructureStage(config), TextureStage(config, workdir="")
  model = stage2.two_stage
  rng = np.random.default_rng(0)

  def batch_of(n):
    return {"image": jnp.asarray(rng.uniform(size=(n, IMAGE, IMAGE, 3)), jnp.float32),
            "mask": jnp.asarray(twin_masks(n))}

  key = jax.random.key(0)
  s1_state = jax.jit(stage1.init)(key, batch_of(2))
  structure_vars = {"params": s1_state.params, "constants": s1_state.constants}
  s2_state = jax.jit(stage2.init)(key, batch_of(2))
  count = lambda tree: sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree)) / 1e6  # noqa: E731
  setup = {"framework": f"jax {jax.__version__}", "device": benchlib.device_name(),
           "params_M": {"E+f": count(s1_state.params), "G": count(s2_state.g_params),
                        "D": count(s2_state.d_params)},
           "matmul_gflops": benchlib.matmul_flops_per_second() / 1e9}

  def masked(b):
    return b["image"] * (1 - b["mask"])

  def work(name, n):
    """(function, its arguments) of one row."""
    b = batch_of(n)
    if name == "s1_train":
      return stage1.train_step, (s1_state, b, key)
    if name == "s1_sample":
      return (lambda v, m, h, k: model.priors(v, m, h, k, 1, TEMPERATURE)[0],
              (structure_vars, masked(b), b["mask"], key))
    if name == "g_fwd":
      priors = jnp.asarray(rng.uniform(size=(n, PRIOR, PRIOR, 3)), jnp.float32)
      return model.texture, (s2_state.g_params, priors, masked(b), b["mask"])
    if name == "s2_train":
      return stage2.train_step, (s2_state, b, key, structure_vars)
    if name == "both":
      return (lambda v, g, m, h, k: model.sample_completions(v, g, m, h, k, num=1,
                                                             temperature=TEMPERATURE)[0],
              (structure_vars, s2_state.g_params, masked(b), b["mask"], key))
    raise ValueError(name)

  variants = {}
  for name, n in rows:
    fn, args = work(name, n)
    start = time.perf_counter()
    exe, _, flops = benchlib.compiled(fn, *args)
    jax.block_until_ready(exe(*args))
    first = time.perf_counter() - start
    variants[f"{name}/{n}"] = {
        "ours": (lambda exe=exe, args=args: jax.block_until_ready(exe(*args)), first,
                 flops / n / 1e9)}
    print(f"  jax: {name} b{n} compiled and run once in {first:.1f} s", file=sys.stderr,
          flush=True)
  return variants, setup


# ---------------------------------------------------------------------------------------------
# The PyTorch worker: the twin's modules, plus the stage-2 step and D it does not have.
# ---------------------------------------------------------------------------------------------


def load_twin(path):
  import importlib.util
  spec = importlib.util.spec_from_file_location("torch_twin", path)
  twin = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(twin)
  return twin


def torch_discriminator(nn):
  """The PatchGAN of models/discriminator.py: 4×4 convs 3→64→128→256 (stride 2)→512→1
  (stride 1), 'SAME' padding, leaky ReLU 0.2, spectral normalisation of every kernel."""
  sn = nn.utils.parametrizations.spectral_norm
  layers, cin = [], 3
  for i, (cout, stride) in enumerate(zip((64, 128, 256, 512, 1), (2, 2, 2, 1, 1))):
    pad = 1 if stride == 2 else "same"
    layers.append(sn(nn.Conv2d(cin, cout, 4, stride, padding=pad)))
    if i < 4:
      layers.append(nn.LeakyReLU(0.2))
    cin = cout
  return nn.Sequential(*layers)


def torch_variants(rows, twin_path, compile_too, quick):
  twin = load_twin(twin_path)
  torch, nn, F = twin.torch, twin.nn, twin.F
  torch.set_num_threads(os.cpu_count() or 1)
  torch.manual_seed(0)
  model = twin.FlowFill(halved=True)
  model.eval()  # no dropout or batch norm anywhere; eval keeps the twin's own setting
  d_net = torch_discriminator(nn)
  img, mask, im = twin.make_batch(16)
  with torch.no_grad():  # ActNorm's data-dependent init, as the twin does
    im_s, mask_s = model.down(im, mask)
    model.nll_bpd(F.avg_pool2d(img, 4), im_s, mask_s)
  s1_opt = torch.optim.Adam(list(model.E.parameters()) + list(model.flow.parameters()), lr=5e-4)
  g_opt = torch.optim.Adam(model.G.parameters(), lr=1e-4, betas=(0.0, 0.9))
  d_opt = torch.optim.Adam(d_net.parameters(), lr=1e-5, betas=(0.0, 0.9))
  count = lambda m: sum(p.numel() for p in m.parameters()) / 1e6  # noqa: E731
  mm_a, mm_b = torch.randn(2048, 2048), torch.randn(2048, 2048)
  mm_s = statistics.median(time_round(lambda: mm_a @ mm_b, 0.3) for _ in range(5))
  setup = {"framework": f"torch {torch.__version__}", "threads": torch.get_num_threads(),
           "params_M": {"E+f": count(model.E) - count(model.E.tail) + count(model.flow),
                        "G": count(model.G), "D": count(d_net)},
           "matmul_gflops": 2 * 2048 ** 3 / mm_s / 1e9}

  def stage1_prior(im, mask):
    im_s, mask_s = model.down(im, mask)
    return model.sample_prior(im_s, mask_s, TEMPERATURE)

  def texture(g, prior, im, mask):
    up = F.interpolate(prior, size=im.shape[-2:], mode="bicubic", align_corners=False)
    raw = g(torch.cat([up.clamp(0.0, 1.0), im, mask], dim=1))
    return raw, mask * raw + (1.0 - mask) * im

  def training_prior(img, im, mask, flow=model.flow, encoder=model.E):
    """The truth's latents with a random fraction (up to half) replaced by τ-noise, decoded."""
    with torch.no_grad():
      im_s, mask_s = model.down(im, mask)
      fts = encoder(im_s, mask_s)
      zs, _, _ = flow(F.avg_pool2d(img, IMAGE // PRIOR) - 0.5, fts)
      frac = 0.5 * torch.rand(img.shape[0], 1, 1, 1)
      zs = [torch.where(torch.rand_like(z) < frac, TEMPERATURE * torch.randn_like(z), z)
            for z in zs]
      return (flow.inverse(fts, zs) + 0.5).clamp(0.0, 1.0)

  def s1_train(nll):
    def step(i_s, im_s, mask_s):
      s1_opt.zero_grad(set_to_none=True)
      loss = nll(i_s, im_s, mask_s)
      loss.backward()
      s1_opt.step()
    return step

  def s2_train(g, d, prior_fn):
    def step(img, im, mask):
      prior = prior_fn(img, im, mask)
      raw, completed = texture(g, prior, im, mask)
      d_opt.zero_grad(set_to_none=True)
      d_loss = F.softplus(-d(img)).mean() + F.softplus(d(completed.detach())).mean()
      d_loss.backward()
      d_opt.step()
      g_opt.zero_grad(set_to_none=True)
      d_net.requires_grad_(False)  # G's step differentiates D's input only, as ours does
      g_loss = (0.1 * F.softplus(-d(completed)).mean()
                + (raw - img).abs().mean() / mask.mean().clamp_min(1e-6))
      g_loss.backward()
      d_net.requires_grad_(True)
      g_opt.step()
    return step

  def work(name, n, compiled):
    """(call, FLOP-counting call) of one row; `compiled` wraps what torch.compile should."""
    c = (lambda f: torch.compile(f, dynamic=False)) if compiled else (lambda f: f)
    b_img, b_mask, b_im = img[:n].contiguous(), mask[:n].contiguous(), im[:n].contiguous()
    if name == "s1_train":
      step = s1_train(c(model.nll_bpd))
      i_s = F.avg_pool2d(b_img, IMAGE // PRIOR)
      im_s, mask_s = model.down(b_im, b_mask)
      return lambda: step(i_s, im_s, mask_s), True
    if name == "s1_sample":
      fn = c(stage1_prior)
      return lambda: fn(b_im, b_mask), False
    if name == "g_fwd":
      prior = torch.rand(n, 3, PRIOR, PRIOR)
      fn = c(lambda p, i, m: texture(model.G, p, i, m)[1])
      return lambda: fn(prior, b_im, b_mask), False
    if name == "s2_train":
      step = s2_train(c(model.G), c(d_net), c(training_prior))
      return lambda: step(b_img, b_im, b_mask), True
    if name == "both":
      fn = c(lambda i, m: model.sample(i, m, TEMPERATURE))
      return lambda: fn(b_im, b_mask), False
    raise ValueError(name)

  def run(call, grad):
    if grad:
      return call
    def no_grad_call():
      with torch.inference_mode():
        call()
    return no_grad_call

  variants = {}
  kinds = ["eager"] + (["compile"] if compile_too else [])
  for name, n in rows:
    row = variants[f"{name}/{n}"] = {}
    for kind in kinds:
      call, grad = work(name, n, kind == "compile")
      call = run(call, grad)
      start = time.perf_counter()
      call()
      first = time.perf_counter() - start
      flops = float("nan")
      if kind == "eager" and not quick:
        flops = twin.count_flops(call) / n / 1e9
      row[kind] = (call, first, flops)
      print(f"  torch {kind}: {name} b{n} first call {first:.1f} s", file=sys.stderr, flush=True)
  return variants, setup


# ---------------------------------------------------------------------------------------------
# Worker protocol and the driver.
# ---------------------------------------------------------------------------------------------


def worker(args):
  rows = [(r.split("/")[0], int(r.split("/")[1])) for r in args.row_keys]
  if args.worker == "jax":
    variants, setup = jax_variants(rows)
  else:
    variants, setup = torch_variants(rows, args.twin, not args.no_compile, args.quick)
  setup["first_call_s"] = {r: {k: v[1] for k, v in kinds.items()} for r, kinds in variants.items()}
  setup["gflop_per_image"] = {r: {k: v[2] for k, v in kinds.items()}
                              for r, kinds in variants.items()}
  print(TAG + json.dumps(setup), flush=True)
  for line in sys.stdin:
    if line.strip() != "round":
      break
    times = {r: {k: time_round(v[0], args.seconds) for k, v in kinds.items()}
             for r, kinds in variants.items()}
    print(TAG + json.dumps(times), flush=True)


class Worker:
  """A worker subprocess answering one JSON line per request."""

  def __init__(self, command):
    self.command = command
    self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True, cwd=ROOT)

  def reply(self):
    for line in self.proc.stdout:
      if line.startswith(TAG):
        return json.loads(line[len(TAG):])
    raise SystemExit(f"worker {' '.join(map(str, self.command[:3]))} … exited with "
                     f"{self.proc.wait()} (its messages above)")

  def ask(self, request):
    self.proc.stdin.write(request + "\n")
    self.proc.stdin.flush()
    return self.reply()

  def close(self):
    if self.proc.poll() is None:
      self.proc.stdin.write("quit\n")
      self.proc.stdin.close()
      self.proc.wait()


def ratio(a, b):
  return f"{a / b:.2f}" if a == a and b == b else "–"


def table(rows, setups, rounds):
  """The result as markdown lines."""
  med = {r: {k: statistics.median(x[r][k] for x in rounds) for k in rounds[0][r]}
         for r in rounds[0]}
  has_compile = any("compile" in v for v in med.values())
  head = ["work", "batch", "ours ms/img", "eager ms/img"]
  head += ["compile ms/img"] if has_compile else []
  head += ["ours ÷ eager"] + (["ours ÷ compile"] if has_compile else [])
  head += ["GFLOP/img ours · twin", "first call s ours · eager" + (" · compile" if has_compile
                                                                    else "")]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  ours_setup, twin_setup = setups
  for name, n, what in rows:
    r = f"{name}/{n}"
    t = med[r]
    ms = lambda s: f"{1e3 * s / n:.1f}"  # noqa: E731
    cells = [what, str(n), ms(t["ours"]), ms(t["eager"])]
    cells += [ms(t["compile"])] if has_compile else []
    cells += [ratio(t["ours"], t["eager"])] + ([ratio(t["ours"], t["compile"])]
                                               if has_compile else [])
    fl_o, fl_t = ours_setup["gflop_per_image"][r]["ours"], twin_setup["gflop_per_image"][r]["eager"]
    cells.append(f"{fl_o:.1f} · {fl_t:.1f}")
    firsts = [ours_setup["first_call_s"][r]["ours"], *twin_setup["first_call_s"][r].values()]
    cells.append(" · ".join(f"{x:.1f}" for x in firsts))
    lines.append("| " + " | ".join(cells) + " |")
  return lines


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--twin-python", default=str(DEFAULT_TWIN_PYTHON),
                      help="a Python with torch (the twin's venv)")
  parser.add_argument("--twin", default=str(DEFAULT_TWIN), help="torch_twin.py")
  parser.add_argument("--rows", nargs="+", choices=sorted({r[0] for r in ROWS}),
                      help="only these rows (default: all)")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--seconds", type=float, default=2.0, help="timing per row and round")
  parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
  parser.add_argument("--quick", action="store_true",
                      help="one short round, no FLOP count: checks the code, not the figures")
  parser.add_argument("--out", help="also write the log and table to this file")
  parser.add_argument("--worker", choices=["jax", "torch"], help=argparse.SUPPRESS)
  parser.add_argument("--row-keys", nargs="*", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.quick:
    args.rounds, args.seconds = 1, 0.0
  if args.worker:
    return worker(args)

  rows = [r for r in ROWS if not args.rows or r[0] in args.rows]
  for path, what in ((args.twin_python, "--twin-python"), (args.twin, "--twin")):
    if not Path(path).exists():
      raise SystemExit(f"{what} {path} does not exist (make the twin's venv: see this "
                       "script's docstring)")
  keys = ["--row-keys", *(f"{name}/{n}" for name, n, _ in rows)]
  flags = ["--seconds", str(args.seconds)] + (["--quick"] if args.quick else [])
  log = []

  def say(line=""):
    print(line, flush=True)
    log.append(line)

  start = time.perf_counter()
  say(f"{datetime.date.today()}, {cpu_name()}, {os.cpu_count()} cores; "
      f"load average {os.getloadavg()[0]:.2f} at start")
  say("setting up (building and compiling every row, one framework at a time)")
  ours = Worker([sys.executable, __file__, "--worker", "jax", *flags, *keys])
  ours_setup = ours.reply()
  twin = Worker([args.twin_python, __file__, "--worker", "torch", "--twin", args.twin, *flags,
                 *(["--no-compile"] if args.no_compile else []), *keys])
  twin_setup = twin.reply()
  for s in (ours_setup, twin_setup):
    say(f"{s['framework']}: parameters (M) {s['params_M']}; 2048² float32 matmul "
        f"{s['matmul_gflops']:.0f} GFLOP/s")
  rounds = []
  for i in range(args.rounds):
    t = ours.ask("round")
    t.update({r: {**t[r], **v} for r, v in twin.ask("round").items()})
    rounds.append(t)
    say(f"round {i + 1}: " + ", ".join(f"{r} " + "/".join(f"{1e3 * s:.0f}" for s in v.values())
                                      + " ms" for r, v in t.items()))
  ours.close()
  twin.close()
  say()
  say(f"Median of {args.rounds} alternating rounds (≥ {args.seconds:g} s of calls per row and "
      f"round); ms per image; load average {os.getloadavg()[0]:.2f} at the end; "
      f"{time.perf_counter() - start:.0f} s in all.")
  say()
  for line in table(rows, (ours_setup, twin_setup), rounds):
    say(line)
  if args.out:
    Path(args.out).write_text("\n".join(log) + "\n")


if __name__ == "__main__":
  main()
