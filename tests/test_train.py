"""Training end to end: both stages, what a run writes, bad input. (A job killed after a
checkpoint and resumed, and data parallelism: tests/test_multiprocess.py.)"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import TINY_CONFIG, tiny_config

from flowfill_jax import factory, train
from flowfill_jax.checkpoints import StageCheckpoints
from flowfill_jax.errors import UserError

STRUCTURE_ONLY = "--config.stages=('structure',)"


def _cli(workdir, *overrides, data_dir):
  """The training CLI in a subprocess; its stderr goes to `<workdir>.log` (no pipe to fill)."""
  env = dict(os.environ, FLOWFILL_TEST_DATA_DIR=data_dir, JAX_PLATFORMS="cpu")
  log = open(f"{workdir}.log", "a")
  return subprocess.Popen(
      [sys.executable, "-m", "flowfill_jax.train", f"--config={TINY_CONFIG}",
       f"--workdir={workdir}", *overrides], env=env, stdout=subprocess.DEVNULL, stderr=log)


def _log(workdir) -> str:
  return open(f"{workdir}.log").read()


def _final_params(workdir):
  ckpt = StageCheckpoints(os.path.join(workdir, "structure", "checkpoints"))
  step = ckpt.latest_step()
  ckpt.close()
  return step, factory.load_structure_variables(tiny_config(), str(workdir))["params"]


def test_both_stages_write_what_a_user_sees(trained_run):
  workdir, metrics = trained_run
  for stage in ("structure", "texture"):
    stage_dir = os.path.join(workdir, stage)
    assert sorted(os.listdir(os.path.join(stage_dir, "samples"))) == [
        "step_0000003.png", f"step_{6 if stage == 'structure' else 4:07d}.png"]
    lines = [json.loads(l) for l in open(os.path.join(stage_dir, "metrics.jsonl"))]
    assert lines[0]["step"] == 0 and any(k.startswith("val_") for k in lines[0])  # the start
    assert {"step", "images_per_s", "eta_s"} <= set(lines[1])
    assert any(k.startswith("val_") for l in lines for k in l)
  assert np.isfinite(metrics["structure"]["val_bits_per_dim"])
  assert 0.0 <= metrics["texture"]["val_l1"] < 1.0
  assert os.path.exists(os.path.join(workdir, "config.json"))


def test_workdir_of_a_different_config_is_refused(tmp_path, data_dir):
  config = tiny_config()
  train.prepare_workdir(config, str(tmp_path))
  config.model.structure.hidden = 16
  with pytest.raises(UserError, match="different config.*model.structure.hidden"):
    train.prepare_workdir(config, str(tmp_path))
  config.model.structure.hidden = 8
  config.structure.steps = 100  # longer training of the same run is a resumption
  config.texture.log_every = 7
  config.sample.temperature = 0.3  # sampling defaults do not change what was trained
  train.prepare_workdir(config, str(tmp_path))


@pytest.mark.parametrize("section, field, value", [
    ("structure", "batch_size", 3),  # another data order
    ("structure", "lr", 0.1),
    ("texture", "adv_weight", 0.5),
    ("texture", "b1", 0.5),
    ("texture", "prior_noise_temperature", 0.3),  # G's training priors
])
def test_resuming_with_other_training_settings_is_refused(tmp_path, section, field, value):
  config = tiny_config()
  train.prepare_workdir(config, str(tmp_path))
  config[section][field] = value
  with pytest.raises(UserError, match=f"{section}.{field}"):
    train.prepare_workdir(config, str(tmp_path))


def test_unwritable_workdir_is_refused(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("not a folder")
  with pytest.raises(UserError, match="cannot write to workdir"):
    train.prepare_workdir(tiny_config(), str(blocker / "run"))
  with pytest.raises(UserError, match="is a file, not a folder"):
    train.prepare_workdir(tiny_config(), str(blocker))


@pytest.mark.parametrize("override, message", [
    ("--config.structure.stepz=3", "stepz"),
    ("--config.data.name=no_such_dataset", "no_such_dataset"),
    ("--config.structure.batch_size=0", "config.structure.batch_size=0"),
    ("--config.mesh.num_devices=4096", "config.mesh.num_devices"),
])
def test_cli_bad_input_exits_with_a_message_and_leaves_no_workdir(tmp_path, data_dir, override,
                                                                  message):
  proc = _cli(tmp_path / "run", override, data_dir=data_dir)
  proc.wait(timeout=600)
  err = _log(tmp_path / "run")
  assert proc.returncode != 0
  assert message in err
  assert "Traceback" not in err
  assert not (tmp_path / "run").exists()  # a corrected config can still use this workdir


@pytest.mark.parametrize("stages, names", [
    (("structure", "texture"), ["structure", "texture"]),  # the config file's tuple
    ("texture", ["texture"]),                               # --config.stages=texture
    (("structure,texture",), ["structure", "texture"]),     # --config.stages=structure,texture
    (("structure",), ["structure"]),
])
def test_stage_names_from_config_and_command_line(stages, names):
  assert train.stage_names(stages) == names


@pytest.mark.parametrize("stages", ["textures", ("structure", "gan"), ""])
def test_unknown_stage_names_are_refused(stages):
  with pytest.raises(UserError, match="config.stages"):
    train.stage_names(stages)


@pytest.mark.parametrize("source, message", [
    ("x = (\n", "config file bad.py, line 1: '(' was never closed"),
    ("x = 1\n", "config file bad.py defines no get_config() function"),
    ("def get_config():\n  return 5\n",
     "config file bad.py: get_config() returned a int, not an ml_collections.ConfigDict"),
    ("def get_config():\n  return nothing\n",
     "config file bad.py failed to load: NameError: name 'nothing' is not defined"),
])
def test_a_broken_config_file_is_one_line(tmp_path, source, message):
  (tmp_path / "bad.py").write_text(source)
  proc = subprocess.run([sys.executable, "-m", "flowfill_jax.train", "--config=bad.py",
                         f"--workdir={tmp_path / 'run'}"], capture_output=True, text=True,
                        timeout=120, cwd=tmp_path)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1] == f"error: {message}"
  assert "Traceback" not in proc.stderr
  assert not (tmp_path / "run").exists()


def test_missing_config_file_is_one_line(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "flowfill_jax.train", "--config=configs/nope.py",
                         f"--workdir={tmp_path / 'run'}"], capture_output=True, text=True,
                        timeout=120, cwd=tmp_path)
  assert proc.returncode == 2
  assert proc.stderr.strip() == "error: config file configs/nope.py does not exist"
  assert not (tmp_path / "run").exists()


def test_the_three_command_lines_import_together():
  """Flags are defined in main only: one process can import every CLI module (and a
  dashed flag name reaches train as absl's underscored one)."""
  code = ("import flowfill_jax.sample, flowfill_jax.train, flowfill_jax.evaluate\n"
          "from flowfill_jax.cli import undash\n"
          "assert undash(['x', '--config.data.mask-dir=a-b', 'v']) == "
          "['x', '--config.data.mask_dir=a-b', 'v']\n")
  subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("address, processes, index", [
    ("127.0.0.1:1234", None, 0),  # the three flags go together
    ("127.0.0.1:1234", 2, 2),     # index out of range
])
def test_incomplete_or_bad_distributed_flags_are_refused(address, processes, index):
  with pytest.raises(UserError, match="process"):
    train.start_distributed(False, address, processes, index)


def test_distributed_without_a_cluster_is_a_one_line_error(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "flowfill_jax.train", f"--config={TINY_CONFIG}",
                         f"--workdir={tmp_path / 'run'}", "--distributed"],
                        capture_output=True, text=True, timeout=120,
                        env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert proc.returncode != 0
  assert "jax.distributed.initialize failed" in proc.stderr and "--coordinator_address" in (
      proc.stderr)
  assert "Traceback" not in proc.stderr
  assert not (tmp_path / "run").exists()
