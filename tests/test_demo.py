"""The web demo: its input handling, its handlers on a trained run, its Python client API and
the page in a real browser (headless Chromium driven by Playwright)."""

import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from flowfill_jax import demo as demo_lib
from flowfill_jax.errors import UserError
from flowfill_jax.image_io import read_image

# .ci/run sets this: there a missing browser is a failure, not a skip.
REQUIRE_BROWSER = os.environ.get("FLOWFILL_REQUIRE_BROWSER") == "1"


def _editor_value(image_u8, hole):
  """What Gradio's ImageEditor hands the handler: RGBA background, one RGBA paint layer."""
  h, w = hole.shape
  background = np.concatenate([image_u8, np.full((h, w, 1), 255, np.uint8)], -1)
  layer = np.zeros((h, w, 4), np.uint8)
  layer[hole] = (255, 0, 255, 255)
  return {"background": background, "layers": [layer], "composite": None}


def _photo(size):
  from conftest import real_crops
  return (real_crops(1, size, seed=3)[0] * 255).round().astype(np.uint8)


def _box_hole(size):
  hole = np.zeros((size, size), bool)
  hole[size // 4: size // 2 + 2, size // 3: 3 * size // 4] = True
  return hole


def test_editor_value_gives_the_image_and_every_painted_pixel_as_hole():
  image = _photo(24)
  hole = _box_hole(24)
  value = _editor_value(image, hole)
  value["layers"].append(np.zeros((24, 24, 4), np.uint8))  # an empty second layer adds nothing
  got_image, got_hole = demo_lib.editor_image_and_hole(value)
  np.testing.assert_array_equal(got_hole, hole)
  np.testing.assert_allclose(got_image, image / 255.0, atol=1e-6)


@pytest.mark.parametrize("case, message", [
    ("no image", "no image"),
    ("no hole", "has no hole pixels"),
    ("all painted", "covers the whole image"),
    ("huge", "at most 2048 pixels a side"),
    ("tiny", "too small"),
])
def test_bad_page_input_is_a_user_error_naming_the_problem(case, message):
  size = 2100 if case == "huge" else 4 if case == "tiny" else 24
  image = np.zeros((size, size, 3), np.uint8)
  hole = np.zeros((size, size), bool)
  if case == "all painted":
    hole[:] = True
  elif case != "no hole":
    hole[: size // 2, : size // 2] = True
  value = None if case == "no image" else _editor_value(image, hole)
  with pytest.raises(UserError, match=message):
    demo_lib.editor_image_and_hole(value)


def test_the_page_and_the_clis_share_one_temperature_limit(tmp_path):
  """The page's slider ends at MAX_TEMPERATURE, and a τ above it is refused in the same words
  by the page, `sample` and `evaluate` (each before loading anything)."""
  gr = pytest.importorskip("gradio")
  from flowfill_jax.user_input import MAX_TEMPERATURE
  too_hot = MAX_TEMPERATURE + 0.1
  commands = [["flowfill_jax.sample", "--image=photo.png", "--mask=mask.png"],
              ["flowfill_jax.evaluate", f"--workdir={tmp_path}"]]
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  procs = [subprocess.Popen([sys.executable, "-m", *cmd, f"--out={tmp_path / 'out'}",
                             f"--temperature={too_hot}"], stderr=subprocess.PIPE, text=True,
                            env=env) for cmd in commands]  # side by side: each starts JAX
  model = SimpleNamespace(size=32, checkpoint_steps={"structure": 1}, temperature=0.8)
  page = demo_lib.build_page(demo_lib.DemoModel(model), [])
  sliders = [b for b in page.blocks.values()
             if isinstance(b, gr.Slider) and b.elem_id == "temperature"]
  assert [(s.minimum, s.maximum) for s in sliders] == [(0.0, MAX_TEMPERATURE)]
  with pytest.raises(UserError) as refused:
    demo_lib.DemoModel(model).inpaint(_editor_value(_photo(32), _box_hole(32)), 2, too_hot, 0,
                                      False)
  words = str(refused.value).removeprefix("temperature ")
  assert f"[0, {MAX_TEMPERATURE:g}]" in words
  for cmd, proc in zip(commands, procs):
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, (cmd, err[-2000:])
    assert err.strip().splitlines() == [f"error: --temperature {words}"], cmd
  assert not (tmp_path / "out").exists()


def test_handlers_rank_samples_keep_known_pixels_and_report_time(trained_run, tmp_path):
  from flowfill_jax.inference import Inpainter
  workdir, _ = trained_run
  demo = demo_lib.DemoModel(Inpainter.from_workdir(workdir))
  size = demo.model.size
  image, hole = _photo(size), _box_hole(size)
  value = _editor_value(image, hole)
  gallery, priors, status = demo.inpaint(value, 6, 0.8, 5, True)
  assert len(gallery) == 6 and len(priors) == 6
  log_probs = [float(caption.split("log p ")[1]) for _, caption in gallery]
  assert log_probs == sorted(log_probs, reverse=True)  # most likely first
  for completion, _ in gallery:
    np.testing.assert_allclose(completion[~hole], image[~hole] / 255.0, atol=1e-6)
  assert "6 completions" in status and " s, τ = 0.8" in status
  # Sample k of a seed does not depend on the count asked: more samples only add to them.
  fewer, _, _ = demo.inpaint(value, 3, 0.8, 5, False)
  assert {c.split("log p ")[1] for _, c in fewer} <= {c.split("log p ")[1] for _, c in gallery}
  with pytest.raises(UserError, match="between 1 and 16"):
    demo.inpaint(value, 0, 0.8, 0, False)
  with pytest.raises(UserError, match="temperature"):
    demo.inpaint(value, 2, 5.0, 0, False)
  (tmp_path / "notes.png").write_text("not an image")  # what a wrong upload hands over
  with pytest.raises(UserError, match="notes.png"):
    demo.transfer(value, str(tmp_path / "notes.png"))
  out, status = demo.transfer(value, _photo(2 * size))  # another size: resized to the photo's
  assert out.shape == (size, size, 3) and "transferred" in status
  np.testing.assert_allclose(out[~hole], image[~hole] / 255.0, atol=1e-6)


@pytest.fixture(scope="module")
def server():
  """The page as a fresh install serves it: the model shipped in the package."""
  pytest.importorskip("gradio")
  page, url = demo_lib.serve(None, port=0, block=False)
  yield url
  page.close()


def test_client_api_returns_the_asked_number_of_completions(server, tmp_path):
  from gradio_client import Client, handle_file
  size = 32
  image, hole = _photo(size), _box_hole(size)
  value = _editor_value(image, hole)
  Image.fromarray(value["background"]).save(tmp_path / "background.png")
  Image.fromarray(value["layers"][0]).save(tmp_path / "layer.png")
  client = Client(server, verbose=False)
  gallery, _, status = client.predict(
      {"background": handle_file(str(tmp_path / "background.png")),
       "layers": [handle_file(str(tmp_path / "layer.png"))], "composite": None},
      3, 0.8, 0, False, api_name="/inpaint")
  assert len(gallery) == 3 and "3 completions" in status
  for item in gallery:
    completion = read_image(item["image"])
    np.testing.assert_allclose(completion[~hole], image[~hole] / 255.0, atol=1.5 / 255)


def _chromium():
  for name in ("chromium", "chromium-browser", "google-chrome"):
    path = shutil.which(name)
    if path:
      return path
  return None


def test_browser_paints_a_hole_and_gets_the_gallery(server, tmp_path):
  """Upload a photo, paint a stroke, press the button: N completions, known pixels kept."""
  chromium = _chromium()
  try:
    from playwright.sync_api import expect, sync_playwright
  except ImportError:
    chromium = None
  if chromium is None:
    if REQUIRE_BROWSER:
      pytest.fail("FLOWFILL_REQUIRE_BROWSER=1 but Playwright or Chromium is missing")
    pytest.skip("needs Playwright and a Chromium (pip install playwright; apt-get install chromium)")
  size, num = 32, 5
  photo = _photo(size)
  Image.fromarray(photo).save(tmp_path / "photo.png")
  with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    page.goto(server, wait_until="networkidle")
    editor = page.locator("#editor")
    undo = editor.get_by_label("Undo", exact=True)
    # The editor shows its toolbar once its canvas is ready; a file given before that is lost.
    undo.wait_for(timeout=60_000)
    editor.locator("input[type=file]").set_input_files(str(tmp_path / "photo.png"))
    # It loads the file into its canvas asynchronously, then records that as an undoable step:
    # Undo enabled means the photo is the editor's value, so a press now sends it.
    expect(undo).to_be_enabled(timeout=60_000)
    # Pressing the button before painting: a message on the page, and the server goes on. One
    # press, answered before the next: a press while an event is pending would be dropped.
    page.locator("#fill").click()
    page.get_by_text("has no hole pixels").first.wait_for(timeout=60_000)
    editor.get_by_label("Brush", exact=True).click()
    box = page.locator("#editor canvas").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - 30, cy)
    page.mouse.down()
    for i in range(11):
      page.mouse.move(cx - 30 + 6 * i, cy + 2 * i)
    page.mouse.up()
    page.locator("#num input[type=number]").fill(str(num))
    page.locator("#num input[type=number]").press("Enter")
    expect(page.locator("#num input[type=range]")).to_have_value(str(num))  # the slider took it
    page.locator("#fill").click()
    page.wait_for_function(
        f"[...document.querySelectorAll('#completions img')].filter(i => i.complete && "
        f"i.naturalWidth > 0).length === {num}", timeout=60_000)
    sources = page.eval_on_selector_all("#completions img", "imgs => imgs.map(i => i.src)")
    completions = []
    for k, src in enumerate(sources):
      path = tmp_path / f"completion_{k}.png"
      path.write_bytes(page.request.get(src).body())
      completions.append(np.asarray(Image.open(path).convert("RGB")))
    assert f"{num} completions of a 32×32 image" in page.locator("#status").inner_text()
    browser.close()
  assert len(completions) == num
  changed = np.zeros((size, size), bool)
  for c in completions:
    assert c.shape == photo.shape
    changed |= np.any(c != photo, axis=-1)
  # The painted stroke was filled (pixels changed) and nothing far from it was touched.
  assert changed.any()
  ys, xs = np.nonzero(changed)
  assert ys.min() > 0 or xs.min() > 0
  assert not changed[0].any() and not changed[-1].any()
