"""Shared test helpers: real photographs and parameter perturbation."""

import contextlib
import fcntl
import json
import os
import pathlib
import tempfile

# The tests are compile-bound and time nothing: XLA's cheap compilation mode runs the suite
# ~2.5× faster (test_bijectors.py: 21 s against 54 s), and XLA:CPU's older loop emitters
# compile a tiny training run in 23 s against 31 s with its MLIR fusion emitters. Set before
# JAX is imported, and inherited by the CLIs the tests start (`xla_flags` for those given
# their own XLA_FLAGS). `FLOWFILL_TEST_OPTIMIZE=1` keeps XLA's defaults.
_CHEAP_COMPILE = os.environ.get("FLOWFILL_TEST_OPTIMIZE") != "1"
_TEST_XLA_FLAGS = "--xla_cpu_use_fusion_emitters=false" if _CHEAP_COMPILE else ""


def xla_flags(*flags: str) -> str:
  """XLA_FLAGS for a process the tests start: `flags` and the suite's own."""
  return " ".join((*flags, _TEST_XLA_FLAGS)).strip()


if _CHEAP_COMPILE:
  os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
  os.environ["XLA_FLAGS"] = xla_flags(os.environ.get("XLA_FLAGS", ""))

import jax
import numpy as np
import pytest

# Fixed evaluation masks are cached on first use; the tests (and the CLIs they start, which
# inherit the environment) keep theirs out of the user's home.
os.environ["FLOWFILL_CACHE_DIR"] = tempfile.mkdtemp(prefix="flowfill_test_cache_")


def perturb(variables, key, scale=0.05):
  """Move every parameter away from its (identity) initialisation.

  At init every coupling, injector and prior ends in a zero layer, so the flow is
  close to the identity there and a round trip would prove little.
  """
  if "params" not in variables:
    return variables
  leaves, treedef = jax.tree.flatten(variables["params"])
  keys = jax.random.split(key, len(leaves))
  noisy = [p + scale * jax.random.normal(k, p.shape, p.dtype) for p, k in zip(leaves, keys)]
  return {**variables, "params": jax.tree.unflatten(treedef, noisy)}


def real_crops(n: int, size: int, seed: int = 0) -> np.ndarray:
  """`n` random `size`² crops (float32 in [0, 1]) of scikit-image's bundled photographs."""
  from skimage import data, transform
  photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
  rng = np.random.default_rng(seed)
  out = []
  for i in range(n):
    photo = photos[i % len(photos)]
    side = int(rng.integers(size, min(photo.shape[:2]) + 1))
    y = int(rng.integers(0, photo.shape[0] - side + 1))
    x = int(rng.integers(0, photo.shape[1] - side + 1))
    crop = photo[y:y + side, x:x + side].astype(np.float32) / 255.0
    out.append(transform.resize(crop, (size, size), anti_aliasing=True))
  return np.stack(out).astype(np.float32)


def box_masks(n: int, size: int, seed: int = 0) -> np.ndarray:
  """Random rectangular holes (1 = hole), [n, size, size, 1]."""
  rng = np.random.default_rng(seed)
  masks = np.zeros((n, size, size, 1), np.float32)
  for m in masks:
    h, w = rng.integers(size // 4, size // 2 + 1, size=2)
    y, x = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
    m[y:y + h, x:x + w] = 1.0
  return masks


@pytest.fixture(name="perturb")
def perturb_fixture():
  return perturb


TINY_CONFIG = __file__.rsplit("/", 1)[0] + "/configs/tiny.py"


def tiny_config():
  import importlib.util
  spec = importlib.util.spec_from_file_location("tiny_config", TINY_CONFIG)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def _shared_dir(tmp_path_factory) -> pathlib.Path:
  """A folder of this test session shared by its xdist workers (each worker has its own
  basetemp below it), or the basetemp itself without xdist."""
  base = tmp_path_factory.getbasetemp()
  return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def _exclusive(path: pathlib.Path):
  """An exclusive lock across processes: the first worker builds, the others wait and reuse."""
  with open(path, "w") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
  """One demo-set build per test session, shared by every test, worker and subprocess."""
  from flowfill_jax import datasets
  shared = _shared_dir(tmp_path_factory)
  path = shared / "tfds"
  with _exclusive(shared / "tfds.lock"):
    datasets.load("demo", "train", data_dir=str(path))  # built by the first worker only
  os.environ["FLOWFILL_TEST_DATA_DIR"] = str(path)
  return str(path)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, data_dir):
  """A tiny run of both stages, trained by `train_and_evaluate` on the demo set once per
  session (xdist workers share it; tests only read it)."""
  from flowfill_jax import train
  shared = _shared_dir(tmp_path_factory)
  workdir, done = shared / "trained_run", shared / "trained_run.json"
  with _exclusive(shared / "trained_run.lock"):
    if not done.exists():
      config = tiny_config()
      config.data.data_dir = data_dir
      metrics = train.train_and_evaluate(config, str(workdir))
      done.write_text(json.dumps(metrics, default=float))
  return str(workdir), json.loads(done.read_text())


# Fixtures that train, build data or serve: a test using one is `slow` (so is a paper-size one).
_SLOW_FIXTURES = {"trained_run", "data_dir", "server"}


def pytest_collection_modifyitems(config, items):
  """`pytest -m "not slow"`: the unit tests alone, for a quick check while editing."""
  for item in items:
    if _SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or "paper" in item.name:
      item.add_marker(pytest.mark.slow)
