"""A web page for trying a model: paint a hole, get diverse completions ranked by likelihood.

  pip install -e ".[demo]"
  python -m flowfill_jax.demo                      # the model shipped in the package
  python -m flowfill_jax.demo --workdir runs/demo  # any trained run (or exported model)

Serves on 127.0.0.1 (`--host`, `--port`) and prints the URL. Gradio, because it is what the
field's demos use (LaMa's and MAT's hosted apps) and gives a brush editor, galleries and a
Python client for free. The model is loaded and compiled once at start; a request then
costs what sampling costs, and the page says how long it took.

Samples are drawn in jitted chunks of `CHUNK` (one compilation serves every count): sample
k of a seed is the same whatever the count asked, so asking for more only adds samples.
"""

import os
import socket
import tempfile
import time
from typing import TYPE_CHECKING, Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no phoning home, offline too

import jax
import numpy as np
from absl import app, flags

from flowfill_jax import resize, visualize
from flowfill_jax.cli import exit_on_user_error, parse_dashed_flags
from flowfill_jax.errors import UserError
from flowfill_jax.image_io import read_image
from flowfill_jax.inference import Inpainter
from flowfill_jax.metric_logging import log, setup_logging
from flowfill_jax.user_input import MAX_TEMPERATURE, check_hole, check_temperature

if TYPE_CHECKING:
  import gradio as gr

FLAGS = flags.FLAGS

CHUNK = 4  # samples per jitted call
MAX_SAMPLES = 16
MAX_SIDE = 2048  # larger uploads are refused: completions are returned at the upload's size
NUM_EXAMPLES = 8
PRIOR_VIEW = 128  # priors (prior_size², e.g. 16²) are shown enlarged to this size


def define_flags() -> None:
  flags.DEFINE_string("workdir", None, "A trained run or exported model (default: the model "
                      "shipped in the package).")
  flags.DEFINE_string("host", "127.0.0.1", "Address to serve on.")
  flags.DEFINE_integer("port", 7860, "Port to serve on (0: a free one).")


# --------------------------------------------------------------------------- page input

def editor_image_and_hole(value: Any,
                          what: str = "the photo") -> tuple[np.ndarray, np.ndarray]:
  """An ImageEditor value → (image HxWx3 in [0, 1], hole HxW bool: every painted pixel)."""
  background = None if value is None else value.get("background")
  if background is None or np.size(background) == 0:
    raise UserError(f"no image: upload {what} or pick an example first")
  image = _rgb(background, what)
  hole = np.zeros(image.shape[:2], bool)
  for layer in value.get("layers") or []:
    layer = np.asarray(layer)
    if layer.ndim == 3 and layer.shape[:2] == hole.shape and layer.shape[-1] == 4:
      hole |= layer[..., 3] > 0
  check_hole(hole, "the painted mask", "paint the region to fill with the brush")
  return image, hole


def _rgb(array, what: str) -> np.ndarray:
  x = np.asarray(array)
  if x.ndim == 2:
    x = np.repeat(x[..., None], 3, axis=-1)
  if x.ndim != 3 or x.shape[-1] not in (3, 4):
    raise UserError(f"{what} is not a colour image (array of shape {x.shape})")
  h, w = x.shape[:2]
  if max(h, w) > MAX_SIDE:
    raise UserError(f"{what} is {w}×{h}: the page takes at most {MAX_SIDE} pixels a side, "
                    "resize it first")
  if min(h, w) < 8:
    raise UserError(f"{what} is {w}×{h}: too small to inpaint")
  scale = 255.0 if np.issubdtype(x.dtype, np.integer) or x.max() > 1.0 else 1.0
  return x[..., :3].astype(np.float32) / scale


def _viewable_prior(prior: np.ndarray) -> np.ndarray:
  factor = max(1, PRIOR_VIEW // prior.shape[0])
  return np.repeat(np.repeat(np.clip(prior, 0.0, 1.0), factor, 0), factor, 1)


# --------------------------------------------------------------------------- the model side

class DemoModel:
  """The page's two actions on one loaded, compiled model (no Gradio here: tested directly)."""

  def __init__(self, model: Inpainter):
    self.model = model

  @classmethod
  def load(cls, workdir: str | None) -> "DemoModel":
    start = time.perf_counter()
    demo = cls(Inpainter.from_workdir(workdir))
    demo.warm_up()
    log.info("model %s loaded and compiled in %.1f s", workdir or "(shipped model)",
                 time.perf_counter() - start)
    return demo

  def warm_up(self) -> None:
    """Compile sampling and transfer at the model's size (an upload of another size adds
    only its resize)."""
    s = self.model.size
    image = np.full((s, s, 3), 0.5, np.float32)
    hole = np.zeros((s, s), np.float32)
    hole[s // 4: s // 2, s // 4: s // 2] = 1
    self.samples(image, hole, CHUNK, None, 0)
    self.model.transfer(image, image, hole)

  def samples(self, image: np.ndarray, hole: np.ndarray, num: int, temperature: float | None,
              seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`num` samples, most likely first: (completions, priors, log p) as numpy arrays."""
    base = jax.random.key(seed)
    parts = [self.model.sample(image, hole, num=CHUNK, temperature=temperature,
                               key=jax.random.fold_in(base, k))
             for k in range(-(-num // CHUNK))]
    completions, priors, log_prob = (np.concatenate(x)[:num] for x in zip(*parts))
    order = np.argsort(-log_prob)
    return completions[order], priors[order], log_prob[order]

  def inpaint(self, value: Any, num: Any, temperature: Any, seed: Any, show_priors: bool
              ) -> tuple[list[tuple[np.ndarray, str]], list[tuple[np.ndarray, str]], str]:
    """Page handler → (gallery items, prior gallery items, status line)."""
    image, hole = editor_image_and_hole(value)
    num, seed = _count(num), _seed(seed)
    tau = _temperature(temperature)
    start = time.perf_counter()
    completions, priors, log_prob = self.samples(image, hole, num, tau, seed)
    seconds = time.perf_counter() - start
    gallery = [(c, f"#{i + 1} · log p {lp:.1f}") for i, (c, lp) in
               enumerate(zip(completions, log_prob))]
    shown = [(_viewable_prior(p), f"prior #{i + 1}") for i, p in enumerate(priors)] \
        if show_priors else []
    h, w = image.shape[:2]
    status = (f"{num} completion{'s' if num > 1 else ''} of a {w}×{h} image "
              f"({100 * hole.mean():.0f}% hole) in {seconds:.2f} s, τ = "
              f"{self.model.temperature if tau is None else tau:g}, seed {seed}; "
              "most likely first.")
    return gallery, shown, status

  def transfer(self, value: Any, target: str | np.ndarray | None) -> tuple[np.ndarray, str]:
    """Page handler: fill the painted hole of `value` with `target`'s content → (image, status)."""
    image, hole = editor_image_and_hole(value)
    if target is None:
      raise UserError("no target: upload the image whose content should fill the hole")
    if isinstance(target, str):  # the page hands over the uploaded file: read with named errors
      target = read_image(target)
    target = _rgb(target, "the target image")
    if target.shape != image.shape:
      target = resize.image(target, image.shape[:2])
    start = time.perf_counter()
    out = self.model.transfer(target, image, hole)
    seconds = time.perf_counter() - start
    return out, f"transferred in {seconds:.2f} s (target resized to the photo's size if needed)."


def _count(num) -> int:
  try:
    n = int(num)
  except (TypeError, ValueError):
    raise UserError(f"number of samples must be a whole number, got {num!r}") from None
  if not 1 <= n <= MAX_SAMPLES:
    raise UserError(f"number of samples must be between 1 and {MAX_SAMPLES}, got {n}")
  return n


def _seed(seed) -> int:
  try:
    return int(seed) % (2 ** 31)
  except (TypeError, ValueError, OverflowError):
    raise UserError(f"seed must be a whole number, got {seed!r}") from None


def _temperature(tau) -> float | None:
  if tau is None:
    return None
  try:
    tau = float(tau)
  except (TypeError, ValueError):
    raise UserError(f"temperature must be a number, got {tau!r}") from None
  check_temperature(tau)
  return tau


# --------------------------------------------------------------------------- examples

def example_files(model: Inpainter, workdir: str | None, num: int = NUM_EXAMPLES) -> list[str]:
  """Images to pick from: an exported model's `examples/`, else the run's evaluation split
  (written once to a temporary folder); none if neither can be read."""
  from flowfill_jax.datasets import builders
  from flowfill_jax.inference import SHIPPED_MODEL
  folder = os.path.join(workdir or SHIPPED_MODEL, "examples")
  if os.path.isdir(folder):
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".png"))
  try:
    images = builders.spread_images(model.config.data, num)
  except Exception as e:  # an unprepared dataset is not the page's problem
    log.warning("no example images (%s)", e)
    return []
  folder = tempfile.mkdtemp(prefix="flowfill_examples_")
  paths = [os.path.join(folder, f"example_{i:02d}.png") for i in range(len(images))]
  for path, image in zip(paths, images):
    visualize.write_png(path, image)
  return paths


# --------------------------------------------------------------------------- the page

def build_page(demo: DemoModel, examples: list[str]) -> "gr.Blocks":
  import gradio as gr

  def on_page(fn):
    """UserError → a message on the page (gr.Error); the server keeps serving."""
    def wrapped(*args):
      try:
        return fn(*args)
      except UserError as e:
        raise gr.Error(str(e)) from None
    return wrapped

  model = demo.model
  steps = ", ".join(f"{k} step {v}" for k, v in model.checkpoint_steps.items() if v is not None)
  # Sizes in image pixels: 1/8 of the model's side suits images near its size.
  brush = gr.Brush(colors=["#ff00ff"], color_mode="fixed", default_size=max(2, model.size // 8))
  eraser = gr.Eraser(default_size=max(2, model.size // 8))
  with gr.Blocks(title="Flow-Fill", analytics_enabled=False) as page:
    gr.Markdown(
        "# Flow-Fill: diverse inpainting with a conditional normalizing flow\n"
        f"Paint the hole with the brush (erase with the eraser). The model completes "
        f"{model.size}×{model.size} images ({steps}); other sizes are resized for it and the "
        "completion brought back, your known pixels unchanged. Completions are ranked by the "
        "exact likelihood (log p, nats) of their structural prior.")
    with gr.Tab("Inpaint"):
      with gr.Row():
        with gr.Column():
          editor = gr.ImageEditor(label="Photo: paint the hole", type="numpy", format="png",
                                  brush=brush, eraser=eraser,
                                  elem_id="editor", sources=["upload", "clipboard"])
          if examples:
            gr.Examples(examples=[[p] for p in examples], inputs=[editor],
                        label="Or pick a test image")
        with gr.Column():
          num = gr.Slider(1, MAX_SAMPLES, value=8, step=1, label="Samples", elem_id="num")
          tau = gr.Slider(0.0, MAX_TEMPERATURE, value=float(model.temperature), step=0.05,
                          label="Temperature τ", elem_id="temperature")
          seed = gr.Number(value=0, precision=0, label="Seed", elem_id="seed")
          show_priors = gr.Checkbox(value=False, label="Show the structural priors")
          fill = gr.Button("Fill the hole", variant="primary", elem_id="fill")
          status = gr.Markdown(elem_id="status")
      gallery = gr.Gallery(label="Completions, most likely first", columns=4, height="auto",
                           elem_id="completions", format="png")
      priors = gr.Gallery(label="Structural priors (stage 1)", columns=8, visible=False,
                          height="auto",
                          elem_id="priors", format="png")
      show_priors.change(lambda on: gr.Gallery(visible=on), show_priors, priors)
      fill.click(on_page(demo.inpaint), [editor, num, tau, seed, show_priors],
                 [gallery, priors, status], api_name="inpaint", concurrency_limit=1)
    with gr.Tab("Semantic transfer"):
      gr.Markdown("Fill the hole with the content of a second image: its latent code, "
                  "inverted through the flow, decoded under the photo's condition.")
      with gr.Row():
        source = gr.ImageEditor(label="Photo: paint the hole", type="numpy", format="png",
                                brush=brush, eraser=eraser,
                                elem_id="transfer_source", sources=["upload", "clipboard"])
        target = gr.Image(label="Content for the hole", type="filepath",
                          elem_id="transfer_target", sources=["upload", "clipboard"])
        result = gr.Image(label="Transfer", type="numpy", format="png", elem_id="transfer_out")
      transfer = gr.Button("Transfer", variant="primary", elem_id="transfer")
      transfer_status = gr.Markdown(elem_id="transfer_status")
      transfer.click(on_page(demo.transfer), [source, target], [result, transfer_status],
                     api_name="transfer", concurrency_limit=1)
  return page


def serve(workdir: str | None, host: str = "127.0.0.1", port: int = 7860,
          block: bool = True) -> tuple["gr.Blocks", str]:
  """Load, compile, build and launch; → (page, url). With `block=False` the server runs in
  a background thread (tests; `page.close()` stops it)."""
  demo = DemoModel.load(workdir)
  page = build_page(demo, example_files(demo.model, workdir))
  from gradio.themes import Base
  theme = Base(font=["system-ui", "sans-serif"], font_mono=["monospace"])  # no web fonts: offline
  page.queue(default_concurrency_limit=1)
  _, url, _ = page.launch(server_name=host, server_port=port or free_port(host), theme=theme,
                          prevent_thread_lock=True, show_error=True, quiet=True)
  print(f"Flow-Fill demo on {url}  (Ctrl-C to stop)", flush=True)
  if block:
    page.block_thread()
  return page, url


def free_port(host: str = "127.0.0.1") -> int:
  with socket.socket() as s:
    s.bind((host, 0))
    return s.getsockname()[1]


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  try:
    import gradio  # noqa: F401
  except ImportError:
    raise SystemExit('the web demo needs Gradio: pip install "flowfill_jax[demo]"') from None
  setup_logging()
  exit_on_user_error(check_flags)
  exit_on_user_error(serve, FLAGS.workdir, FLAGS.host, FLAGS.port)


def check_flags() -> None:
  if FLAGS.workdir and not os.path.isdir(FLAGS.workdir):
    raise UserError(f"--workdir {FLAGS.workdir} is not a folder")
  if not 0 <= FLAGS.port <= 65535:
    raise UserError(f"--port must be in 0..65535 (0: a free one), got {FLAGS.port}")


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=parse_dashed_flags)
