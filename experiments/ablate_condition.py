"""Stage-1 condition ablation: each deviation alone and combined, on the demo config.

    python experiments/ablate_condition.py --out runs/ablate --steps 600 [--only all paper]

Trains stage 1 only for every variant (`--steps` each, the demo's LR schedule scaled
to it), runs `probe_condition.py` on it, and prints one markdown table (the one in
experiments/notes_condition.md). Runs that already have a probe JSON are not redone.
"""

import argparse
import json
import os
import subprocess
import sys
import time

ALL = {"residual": True, "lowres_condition": True, "cond_norm": True, "learn_top": True,
       "mask_mode": "fraction", "scale_fn": "exp", "coarse_l1_weight": 1.0}
PAPER = {"residual": False, "lowres_condition": False, "cond_norm": False,
         "learn_top": False, "mask_mode": "any", "scale_fn": "sigmoid", "coarse_l1_weight": 0.0}
VARIANTS = {
    "paper": {},
    "lowres_condition": {"lowres_condition": True},
    "residual": {"residual": True},
    "residual+coarse_l1": {"residual": True, "coarse_l1_weight": 1.0},
    "cond_norm": {"cond_norm": True},
    "learn_top": {"learn_top": True},
    "fraction mask": {"mask_mode": "fraction"},
    "exp scales": {"scale_fn": "exp"},
    "all": ALL,
    "all, sigmoid scales": {**ALL, "scale_fn": "sigmoid"},
    "all, no lowres_condition": {**ALL, "lowres_condition": False},
    "all, 32² prior": {**ALL, "prior_size": 32},
    "all, sigmoid scales, 32² prior": {**ALL, "scale_fn": "sigmoid", "prior_size": 32},
}


def overrides(fields: dict) -> list[str]:
  out = []
  for key, value in {**PAPER, **fields}.items():
    section = "structure" if key == "coarse_l1_weight" else "model.structure"
    out.append(f"--config.{section}.{key}={value}")
  return out


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", default="runs/ablate")
  parser.add_argument("--steps", type=int, default=600)
  parser.add_argument("--only", nargs="*", default=None, help="variant names (default: all)")
  args = parser.parse_args()
  names = args.only or list(VARIANTS)
  rows = {}
  for name in names:
    workdir = os.path.join(args.out, name.replace(" ", "_").replace(",", "").replace("²", ""))
    probe_json = os.path.join(workdir, "probe.json")
    if not os.path.exists(probe_json):
      start = time.time()
      train = [sys.executable, "-m", "flowfill_jax.train", "--config", "configs/demo.py",
               f"--workdir={workdir}", "--config.stages=('structure',)",
               f"--config.structure.steps={args.steps}",
               f"--config.structure.sample_every={args.steps}",
               f"--config.structure.eval_every={args.steps}",
               f"--config.structure.checkpoint_every={args.steps}", *overrides(VARIANTS[name])]
      os.makedirs(workdir, exist_ok=True)
      with open(os.path.join(workdir, "train.log"), "w") as log:
        if subprocess.run(train, stdout=log, stderr=subprocess.STDOUT).returncode:
          print(f"{name}: training failed, see {log.name}", flush=True)
          rows[name] = None
          continue
      subprocess.run([sys.executable, "experiments/probe_condition.py", f"--workdir={workdir}",
                      "--num=100", f"--json={probe_json}", "--sheet"], check=True)
      print(f"{name}: {time.time() - start:.0f} s", flush=True)
    with open(probe_json) as f:
      rows[name] = json.load(f)

  splits = list(next(r for r in rows.values() if r))
  head = ["variant"] + [f"{s} {c}" for s in splits for c in
                        ("bits/dim", "known MAE", "hole MAE", "Telea hole")]
  print("| " + " | ".join(head) + " |")
  print("|" + "---|" * len(head))
  for name, res in rows.items():
    if res is None:
      print(f"| {name} | training diverged (non-finite gradient) |")
      continue
    cells = [name]
    for s in splits:
      r = res[s]
      telea = r.get("telea", r["biharmonic"])["hole"]
      cells += [f"{r['bits_per_dim']:.2f}", f"{r['flow τ=0']['known']:.1f}",
                f"{r['flow τ=0']['hole']:.1f}", f"{telea:.1f}"]
    print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
  main()
