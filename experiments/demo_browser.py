"""The web demo in a real browser: time from pressing the button to the gallery, and a screenshot.

Starts `flowfill_jax.demo` on a free localhost port (the shipped model, or `--workdir`), drives
headless Chromium with Playwright: picks the first example image, paints a stroke, asks for
`--num` samples and presses "Fill the hole" `--repeats` times, timing each until every gallery
image has loaded; then shows the priors and writes a screenshot of the page.

  python experiments/demo_browser.py [--workdir RUN] [--num 8] [--screenshot docs/web_demo.png]
"""

import argparse
import os
import shutil
import statistics
import time

from playwright.sync_api import expect, sync_playwright

from flowfill_jax import demo


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", default=None, help="default: the shipped demo model")
  parser.add_argument("--num", type=int, default=8)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--screenshot", default="docs/web_demo.png")
  parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
  args = parser.parse_args()

  start = time.perf_counter()
  page_app, url = demo.serve(args.workdir, port=0, block=False)
  print(f"server up (model loaded and compiled) in {time.perf_counter() - start:.1f} s: {url}")
  times = []
  with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1280, "height": 1250})
    page.goto(url, wait_until="networkidle")
    undo = page.locator("#editor").get_by_label("Undo", exact=True)
    undo.wait_for(timeout=60_000)  # the editor's toolbar: its canvas is ready for an image
    page.locator(".gallery-item").first.click()  # the first example image
    expect(undo).to_be_enabled(timeout=60_000)  # the image is in the canvas (an undoable step)
    page.locator("#editor").get_by_label("Brush", exact=True).click()
    box = page.locator("#editor canvas").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - 70, cy - 40)
    page.mouse.down()
    for i in range(15):
      page.mouse.move(cx - 70 + 10 * i, cy - 40 + 6 * i)
    page.mouse.up()
    page.locator("#num input[type=number]").fill(str(args.num))
    page.locator("#num input[type=number]").press("Enter")
    expect(page.locator("#num input[type=range]")).to_have_value(str(args.num))
    for r in range(args.repeats):
      page.locator("#seed input").fill(str(r))
      t = time.perf_counter()
      page.locator("#fill").click()
      page.wait_for_function(
          "([n, r]) => document.querySelector('#status').innerText.includes('seed ' + r) && "
          "[...document.querySelectorAll('#completions img')].filter("
          "i => i.complete && i.naturalWidth > 0).length === n", arg=[args.num, r],
          timeout=120_000)
      times.append(time.perf_counter() - t)
      print(f"press {r}: {times[-1]:.2f} s to the gallery; page says: "
            f"{page.locator('#status').inner_text().strip()}")
    page.get_by_label("Show the structural priors").check()
    page.locator("#fill").click()
    page.wait_for_function(
        "n => [...document.querySelectorAll('#priors img')].filter("
        "i => i.complete && i.naturalWidth > 0).length === n", arg=args.num, timeout=60_000)
    os.makedirs(os.path.dirname(os.path.abspath(args.screenshot)), exist_ok=True)
    page.screenshot(path=args.screenshot, full_page=True)
    browser.close()
  page_app.close()
  print(f"button → gallery, {args.num} samples: median {statistics.median(times):.2f} s "
        f"(min {min(times):.2f}, max {max(times):.2f}, {len(times)} presses); "
        f"screenshot: {args.screenshot}")


if __name__ == "__main__":
  main()
