"""Data-parallel steps on 8 (fake CPU) devices match the same steps on 1 device."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "sharded_step.py")


def _run(devices: int) -> dict:
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             JAX_PLATFORMS="cpu")
  out = subprocess.run([sys.executable, SCRIPT, str(devices)], env=env, capture_output=True,
                       text=True, timeout=900, check=False)
  assert out.returncode == 0, out.stderr[-3000:]
  return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_eight_devices_match_one():
  one, eight = _run(1), _run(8)
  assert (one["devices"], eight["devices"]) == (1, 8)
  for key in ("structure_loss", "texture_l1", "texture_d_loss"):
    np.testing.assert_allclose(eight[key], one[key], rtol=1e-4, err_msg=key)
  for key in ("structure_params", "texture_params"):
    np.testing.assert_allclose(eight[key], one[key], rtol=1e-4, err_msg=key)
