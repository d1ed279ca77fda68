"""What a user sees of a run: periodic log lines with rates and ETA, JSON lines, TensorBoard."""

import json
import logging
import os
import time

log = logging.getLogger("flowfill_jax")


def setup_logging(progress: bool = True) -> None:
  """Our progress lines at INFO on stderr (`progress=False`, e.g. on all but the first
  process of a multi-process job: warnings only); libraries (orbax, absl) only from WARNING."""
  from absl import logging as absl_logging
  absl_logging.set_verbosity(absl_logging.WARNING)
  if not log.handlers:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
  log.setLevel(logging.INFO if progress else logging.WARNING)
  log.propagate = False


class MetricWriter:
  """Appends `{"step": ..., **metrics}` to `<dir>/metrics.jsonl`; mirrors to TensorBoard
  event files when `tensorboardX` is installed. Only process 0 writes."""

  def __init__(self, directory: str, enabled: bool = True):
    self.enabled = enabled
    self.path = os.path.join(directory, "metrics.jsonl")
    self._tb = None
    if enabled:
      os.makedirs(directory, exist_ok=True)
      try:
        from tensorboardX import SummaryWriter  # optional
        self._tb = SummaryWriter(os.path.join(directory, "tensorboard"))
      except ImportError:
        pass

  def write(self, step: int, metrics: dict) -> None:
    if not self.enabled:
      return
    metrics = {k: float(v) for k, v in metrics.items()}
    with open(self.path, "a") as f:
      f.write(json.dumps({"step": int(step), **metrics}) + "\n")
    if self._tb is not None:
      for k, v in metrics.items():
        self._tb.add_scalar(k, v, step)
      self._tb.flush()

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()


class Progress:
  """Turns step counts into images/s and an ETA for the log line."""

  def __init__(self, start_step: int, total_steps: int, batch_size: int):
    self.total, self.batch = total_steps, batch_size
    self._step, self._time = start_step, time.perf_counter()

  def update(self, step: int) -> dict:
    now = time.perf_counter()
    rate = (step - self._step) / max(now - self._time, 1e-9)
    self._step, self._time = step, now
    eta = (self.total - step) / rate if rate > 0 else float("inf")
    return {"images_per_s": rate * self.batch, "eta_s": eta}


def format_eta(seconds: float) -> str:
  if seconds == float("inf"):
    return "?"
  m, s = divmod(int(seconds), 60)
  h, m = divmod(m, 60)
  return f"{h}:{m:02d}:{s:02d}"
