"""Classical inpainting, to score beside the model on the same images and masks.

Both methods are deterministic (one completion per input) and run on the CPU with numpy:
`biharmonic` is scikit-image's `inpaint_biharmonic` (a dependency), `telea` is OpenCV's
`cv2.inpaint(..., cv2.INPAINT_TELEA)` (Telea 2004; radius 3) from the optional extra
`pip install "flowfill_jax[baselines]"` (opencv-python-headless). Completions are composited:
known pixels are the input's, bit for bit, as the model's are.
"""

from collections.abc import Iterable

import numpy as np

NAMES = ("telea", "biharmonic")
TITLES = {"telea": "Telea", "biharmonic": "Biharmonic"}
TELEA_RADIUS = 3


def check_names(names: Iterable[str]) -> tuple[str, ...]:
  """Known names, in the order given, without repeats; ValueError naming the unknown ones."""
  names = tuple(dict.fromkeys(n.strip().lower() for n in names if n.strip()))
  unknown = [n for n in names if n not in NAMES]
  if unknown:
    raise ValueError(f"unknown baseline {', '.join(map(repr, unknown))}: "
                     f"choose from {', '.join(NAMES)}")
  return names


def unavailable(name: str) -> str | None:
  """Why `name` cannot run on this machine (a one-line note), or None when it can."""
  if name == "telea":
    try:
      import cv2  # noqa: F401
    except ImportError:
      return ("telea skipped: OpenCV is not installed "
              "(pip install \"flowfill_jax[baselines]\" or opencv-python-headless)")
  return None


def _telea(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
  import cv2
  pixels = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)  # cv2 wants 8-bit RGB
  filled = cv2.inpaint(np.ascontiguousarray(pixels), hole.astype(np.uint8) * 255,
                       TELEA_RADIUS, cv2.INPAINT_TELEA)
  return filled.astype(np.float32) / 255.0


def _biharmonic(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
  from skimage.restoration import inpaint_biharmonic
  return inpaint_biharmonic(image.astype(np.float64), hole, channel_axis=-1)


_METHODS = {"telea": _telea, "biharmonic": _biharmonic}


def inpaint(name: str, images: np.ndarray, masks: np.ndarray) -> np.ndarray:
  """Completions [B, H, W, 3] float32 in [0, 1] of images [B, H, W, 3] in [0, 1] under masks
  [B, H, W, 1] (1 = hole): the method's fill inside the holes, the input outside. What the
  images hold inside the holes is never read."""
  method = _METHODS[check_names([name])[0]]
  holes = np.asarray(masks)[..., 0] > 0.5
  # Zeroed as the model's masked input is: a hole's true pixels can never leak into a fill.
  out = np.where(holes[..., None], 0.0, np.asarray(images, np.float32)).astype(np.float32)
  images = out.copy()
  for image, hole, o in zip(images, holes, out):
    if hole.any():
      fill = np.clip(method(image, hole), 0.0, 1.0).astype(np.float32)
      o[hole] = fill[hole]
  return out
