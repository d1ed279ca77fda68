"""Data parallel training, and a multi-process job on one machine: 2 processes on 127.0.0.1
joined by jax.distributed (CPU collectives over gloo), 2 host devices each, against 1 process
with the same 4 devices, against 1 device."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from conftest import TINY_CONFIG, _exclusive, _shared_dir, tiny_config, xla_flags

from flowfill_jax import factory

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "process_data.py")
pytestmark = pytest.mark.slow


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _env(devices: int, data_dir: str) -> dict:
  cache = os.path.join(os.environ["FLOWFILL_CACHE_DIR"], "jax")
  return dict(os.environ, XLA_FLAGS=xla_flags(f"--xla_force_host_platform_device_count={devices}"),
              JAX_PLATFORMS="cpu", FLOWFILL_TEST_DATA_DIR=data_dir,
              JAX_COMPILATION_CACHE_DIR=cache, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")


def _start(processes: int, devices: int, command: list[str], data_dir: str,
           log_prefix) -> list[subprocess.Popen]:
  """`python *command` once per process, joined through a fresh coordinator port (the
  `{port}`, `{processes}`, `{index}` fields of `command`; `-m` modules get the CLI flags);
  each process's stderr goes to `<log_prefix>.<i>.log`."""
  port = _free_port()
  procs = []
  for i in range(processes):
    distributed = ([f"--coordinator_address=127.0.0.1:{port}", f"--num_processes={processes}",
                    f"--process_id={i}"] if processes > 1 and command[0] == "-m" else [])
    args = [a.format(port=port, processes=processes, index=i) for a in command]
    log = open(f"{log_prefix}.{i}.log", "a")
    procs.append(subprocess.Popen([sys.executable, *args, *distributed],
                                  env=_env(devices, data_dir), stdout=subprocess.PIPE,
                                  stderr=log, text=True))
  return procs


def _finish(procs: list[subprocess.Popen], log_prefix) -> list[str]:
  """Each process's stdout, once all have ended well."""
  outs = []
  for i, p in enumerate(procs):
    out, _ = p.communicate(timeout=900)
    assert p.returncode == 0, open(f"{log_prefix}.{i}.log").read()[-3000:]
    outs.append(out)
  return outs


def _digest(out: str) -> dict:
  return json.loads(out.strip().splitlines()[-1])  # gloo prints its own lines first


def test_each_process_reads_only_its_slice_of_the_same_batches(tmp_path, data_dir):
  command = [SCRIPT, "127.0.0.1:{port}", "{processes}", "{index}", data_dir]
  two = [_digest(o) for o in _finish(_start(2, 2, command, data_dir, tmp_path / "two"),
                                       tmp_path / "two")]
  (one,) = [_digest(o) for o in _finish(_start(1, 4, command, data_dir, tmp_path / "one"),
                                        tmp_path / "one")]
  assert [d["devices"] for d in (*two, one)] == [4, 4, 4]
  # Batch 8 over 2 processes: process p reads examples 8·step + 4p … 8·step + 4p + 3 only.
  assert two[0]["read"]["train"] == [40, 41, 42, 43, 48, 49, 50, 51]  # steps 5 and 6
  assert two[1]["read"]["train"] == [44, 45, 46, 47, 52, 53, 54, 55]
  # Together they read what 1 process reads (evaluation too: its padding repeats the last
  # example in whichever process pads)…
  for split in ("train", "eval"):
    assert sorted(two[0]["read"][split] + two[1]["read"][split]) == one["read"][split]
    # …and the global batches both processes see are the 1-process job's.
    assert two[0]["sums"][split] == two[1]["sums"][split] == one["sums"][split]
  # The last evaluation batch (examples 384–431 of 400) is padded: `valid` marks the real ones.
  assert one["sums"]["eval"][-1] == [1.0] * 16 + [0.0] * 32


def _train(workdir, processes: int, devices: int, *overrides, data_dir: str,
           kill_after_checkpoint: int | None = None) -> None:
  """A training job; with `kill_after_checkpoint`, every process is SIGKILLed (a preempted
  job) once that step's checkpoint is complete."""
  command = ["-m", "flowfill_jax.train", f"--config={TINY_CONFIG}", f"--workdir={workdir}",
             *overrides]
  procs = _start(processes, devices, command, data_dir, workdir)
  if kill_after_checkpoint is None:
    _finish(procs, workdir)
    return
  done = workdir / "structure" / "checkpoints" / str(kill_after_checkpoint)
  deadline = time.time() + 600
  while not done.exists() and time.time() < deadline and all(p.poll() is None for p in procs):
    time.sleep(0.1)
  assert all(p.poll() is None for p in procs), "job ended before it could be killed"
  for p in procs:
    p.send_signal(signal.SIGKILL)
    p.wait()


# Validation and sample sheets left to the end of each stage: they do not touch the parameters.
QUIET = ("--config.structure.eval_every=0", "--config.structure.sample_every=0",
         "--config.texture.eval_every=0", "--config.texture.sample_every=0")


@pytest.fixture(scope="session")
def four_device_run(tmp_path_factory, data_dir):
  """The tiny config's both stages in 1 process on 4 devices, once per test session."""
  shared = _shared_dir(tmp_path_factory)
  workdir = shared / "four_device_run"
  with _exclusive(shared / "four_device_run.lock"):
    if not (shared / "four_device_run.done").exists():
      _train(workdir, 1, 4, *QUIET, data_dir=data_dir)
      (shared / "four_device_run.done").touch()
  return workdir


def _flat_params(workdir) -> dict:
  """Both stages' trained parameters (E + f, G), each flattened to one vector."""
  config = tiny_config()
  trees = {"structure": factory.load_structure_variables(config, str(workdir))["params"],
           "texture": factory.load_generator_params(config, str(workdir))}
  return {k: np.concatenate([np.ravel(x) for x in jax.tree.leaves(t)]) for k, t in trees.items()}


def _assert_same_training(actual, expected, tolerance: float, stage: str) -> None:
  """Parameter vectors equal to `tolerance` relative (L2), every entry to a quarter of one
  Adam step (the tiny config's learning rate).

  Devices and processes sum the gradients in other orders (float32 rounding, ~1e-7), and
  XLA's convolution kernels block a batch of 4 per device otherwise than one of 16. Adam
  divides each update by the gradient's own scale, so where a gradient is near zero (a 3×3
  tap at the corner of a 2² map) that rounding can move one entry by ~1e-4 in a few steps
  while the rest agree to 1e-7.
  """
  relative = np.linalg.norm(actual - expected) / np.linalg.norm(expected)
  assert relative <= tolerance, f"{stage}: relative L2 difference {relative:.2e}"
  lr = tiny_config()[stage].lr
  np.testing.assert_allclose(actual, expected, rtol=0, atol=0.25 * lr, err_msg=stage)


def test_data_parallel_on_four_devices_matches_one_device(four_device_run, trained_run):
  """The batch split over 4 devices (gradients all-reduced) trains the parameters that the
  same batches on 1 device do (the session's tiny run), to float32 reduction order."""
  four, one = _flat_params(four_device_run), _flat_params(trained_run[0])
  for stage in ("structure", "texture"):
    _assert_same_training(four[stage], one[stage], 1e-5, stage)


def test_two_processes_train_resume_and_match_one_process(tmp_path, data_dir, four_device_run):
  """Killed after stage 1's step-3 checkpoint and started again: stage 1 resumes from the
  checkpoint both processes restore and runs to 6, stage 2 runs its 4 steps. The parameters
  equal an uninterrupted 1-process run's on the same 4 devices."""
  two = tmp_path / "two"
  _train(two, 2, 2, "--config.structure.log_every=1", *QUIET, data_dir=data_dir,
         kill_after_checkpoint=3)
  _train(two, 2, 2, data_dir=data_dir)  # with validation and sample sheets, process 0 writes

  log0, log1 = (open(f"{two}.{i}.log").read() for i in range(2))
  assert "resumed from step 3" in log0 and "mesh: 4 device(s) cpu on 2 process(es)" in log0
  assert "structure step" not in log1  # one progress log per job: process 0's
  # Checkpoints written once (one folder per step), sheets and metric lines by process 0 only.
  for stage, saved, evaluated, sheets in (("structure", [3, 6], [6], [6]),
                                          ("texture", [3, 4], [0, 3, 4], [3, 4])):
    assert sorted(int(s) for s in os.listdir(two / stage / "checkpoints")) == saved
    lines = [json.loads(l) for l in open(two / stage / "metrics.jsonl")]
    assert [l["step"] for l in lines if any(k.startswith("val_") for k in l)] == evaluated
    assert sorted(os.listdir(two / stage / "samples")) == [f"step_{s:07d}.png" for s in sheets]
  one, two = _flat_params(four_device_run), _flat_params(two)
  for stage in ("structure", "texture"):
    _assert_same_training(two[stage], one[stage], 1e-5, stage)
