"""Train both stages of a config in a fixed wall-clock budget (a lent GPU's minutes).

  python experiments/train_in_budget.py --config configs/photos.py --workdir runs/photos \\
      --seconds 480 [--structure-share 0.55]

The step counts are what this machine reaches in the time, not guesses: each stage is first
run with its step count set far out (so its learning rate is still constant) until it has
logged a steady rate and saved a checkpoint; those images/s then fix the real step count, and the
same workdir resumes to it (`steps` may change on resumption; the learning-rate halvings
then fall at 50/75/90/95% of the real count, exactly as in an uninterrupted run). Each run is
`python -m flowfill_jax.train`, so the workdir is an ordinary run: resumable, exportable.
"""

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

PROBE_STEPS = 1_000_000  # "far out": the probe is stopped by its time limit, not its steps


def load_config(config_arg: str):
  """configs/NAME.py or configs/NAME.py:ARG, as `flowfill_jax.train --config` reads it."""
  path, _, arg = config_arg.partition(":")
  spec = importlib.util.spec_from_file_location("budget_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg or None)


def train(config: str, workdir: str, stage: str, overrides: dict, seconds: float,
          done: Callable[[], bool] = lambda: False) -> float:
  """One `flowfill_jax.train` run of one stage, stopped after `seconds` or once `done()`
  → its wall time."""
  cmd = [sys.executable, "-m", "flowfill_jax.train", f"--config={config}",
         f"--workdir={workdir}", f"--config.stages={stage}"]
  cmd += [f"--config.{stage}.{k}={v}" for k, v in overrides.items()]
  print("$", " ".join(cmd), f"(at most {seconds:.0f} s)", flush=True)
  start = time.perf_counter()
  process = subprocess.Popen(cmd)
  while process.poll() is None:
    if time.perf_counter() - start > seconds or done():
      process.terminate()
      process.wait()
      print(f"stopped after {time.perf_counter() - start:.0f} s, as planned", flush=True)
      break
    time.sleep(1.0)
  else:
    if process.returncode:  # e.g. a non-finite loss: its last good checkpoint stays
      print(f"train exited with status {process.returncode}; going on from its last "
            "checkpoint", flush=True)
  return time.perf_counter() - start


def logged(workdir: str, stage: str) -> list[dict]:
  path = os.path.join(workdir, stage, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def latest_checkpoint(workdir: str, stage: str) -> int:
  folder = os.path.join(workdir, stage, "checkpoints")
  steps = [int(n) for n in os.listdir(folder) if n.isdigit()] if os.path.isdir(folder) else []
  return max(steps, default=0)


def run_stage(args, stage: str, seconds: float, batch: int) -> dict:
  """Probe, then resume to the step count that fills `seconds`."""
  start = time.perf_counter()
  probe = {"steps": PROBE_STEPS, "log_every": args.probe_log_every,
           "checkpoint_every": 4 * args.probe_log_every, "eval_every": 0, "sample_every": 0}
  first = latest_checkpoint(args.workdir, stage)

  def logged_rates() -> list[float]:
    return [m["images_per_s"] for m in logged(args.workdir, stage) if "images_per_s" in m]

  def measured() -> bool:  # a steady rate (the first interval holds the compilation), saved
    return (len(logged_rates()) >= args.probe_rates + 1
            and latest_checkpoint(args.workdir, stage) >= first + 4 * args.probe_log_every)

  probe_wall = train(args.config, args.workdir, stage, probe, seconds, measured)
  rates = logged_rates()
  done = latest_checkpoint(args.workdir, stage)
  if not measured():  # the stage's time ran out (or train failed) before a steady rate
    print(f"{stage}: in {probe_wall:.0f} s the probe logged {len(rates)} rate(s) and saved "
          f"checkpoint {done}; no time left for this stage", flush=True)
    return {"stage": stage, "steps": None, "reached": done, "wall_s": probe_wall}
  rate = statistics.median(rates[1:])  # the first interval holds the compilation
  start_up = max(probe_wall - done * batch / rate, 0.0)  # process start, compile, restore
  left = seconds - (time.perf_counter() - start) - start_up - args.reserve_seconds
  steps = max(done + int(left * rate / batch), done + 1)
  final = {"steps": steps, "log_every": args.log_every,
           "checkpoint_every": max(steps // 4, 1), "eval_every": max(steps // 5, 1),
           "sample_every": steps}
  print(f"{stage}: {rate:.0f} images/s at batch {batch}, start-up {start_up:.0f} s, "
        f"{done} steps done → {steps} steps", flush=True)
  train(args.config, args.workdir, stage, final, seconds - (time.perf_counter() - start))
  reached = latest_checkpoint(args.workdir, stage)
  return {"stage": stage, "images_per_s": rate, "steps": steps, "reached": reached,
          "wall_s": time.perf_counter() - start}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", required=True)
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--seconds", type=float, required=True, help="both stages together")
  parser.add_argument("--structure-share", type=float, default=0.55)
  parser.add_argument("--probe-rates", type=int, default=4,
                      help="logged rates (after the first) that fix the step count")
  parser.add_argument("--probe-log-every", type=int, default=25)
  parser.add_argument("--log-every", type=int, default=100)
  parser.add_argument("--reserve-seconds", type=float, default=30.0,
                      help="per stage: final evaluation, sample sheet and checkpoint")
  args = parser.parse_args()

  config = load_config(args.config)
  start = time.perf_counter()
  summary = [run_stage(args, "structure", args.seconds * args.structure_share,
                       config.structure.batch_size)]
  left = args.seconds - (time.perf_counter() - start)
  summary.append(run_stage(args, "texture", left, config.texture.batch_size))
  print(json.dumps({"total_wall_s": time.perf_counter() - start, "stages": summary}, indent=1))
  with open(os.path.join(args.workdir, "budget_summary.json"), "w") as f:
    json.dump({"total_wall_s": time.perf_counter() - start, "stages": summary}, f, indent=1)


if __name__ == "__main__":
  main()
