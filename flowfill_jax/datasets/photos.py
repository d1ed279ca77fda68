"""The offline photo corpus: real photographs that Debian packages and the Python dependencies
install, split by whole photograph so that `test` measures photos the model never saw.

Sources (each file below was looked at and kept because it is a photograph of a real scene;
renders, logos, patterns and abstract art were left out):

| package | licence (its copyright file) | kept |
|---|---|---|
| `mate-backgrounds` | GPL-2+ | the 12 files of `nature/` (the rest: abstract art, stripes, logos) |
| `plasma-workspace-wallpapers` | GPL-2+ | 11 of its 30 wallpapers (the rest: vector art, renders) |
| `lomiri-wallpapers-16.04` | CC-BY-4.0 / CC-BY-SA-4.0 per file | 11 of 15 (left out: umang, greentock, free, analogpattern: art or renders) |
| `lomiri-wallpapers-20.04` | CC-BY-SA-4.0 | Kleiber (the other three are art) |
| scikit-image, scikit-learn | BSD / CC0 / public domain per image | the demo set's eight training photos |

`ukui-wallpapers` and `gnome-backgrounds` were looked through and hold no photographs. The
demo set's `test_ood` photos (flower, rocket) are kept out of every split here, so the demo's
`test_ood` stays unseen by a model trained on this corpus.

Every photo is first resized so its short side is `SHORT_SIDE` (wallpapers are 1–6k pixels
wide); crops are squares of `CROP_SIDES` pixels of that, resized to the model's size.
"""

import dataclasses
import os

import numpy as np

from flowfill_jax import resize

SHORT_SIDE = 512
CROP_SIDES = (128, 320)  # a crop covers 1/4 to 5/8 of the photo's short side
EVAL_CROP_SIZE = 128
EVAL_CROPS_PER_PHOTO = 50

APT_PACKAGES = ("mate-backgrounds", "plasma-workspace-wallpapers", "lomiri-wallpapers-16.04",
                "lomiri-wallpapers-20.04")
INSTALL_HINT = "sudo apt-get install " + " ".join(APT_PACKAGES)

_MATE = "/usr/share/backgrounds/mate/nature/{}.jpg"
_PLASMA = "/usr/share/wallpapers/{}/contents/images/2560x1600.jpg"
_LOMIRI = "/usr/share/backgrounds/{}.jpg"

# name → file (of the plasma wallpapers' several sizes, the largest, 2560×1600).
_FILES = {
    **{n: _MATE.format(n) for n in (
        "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird",
        "RainDrops", "Storm", "TwoWings", "Wood", "YellowFlower")},
    **{n: _PLASMA.format(n) for n in (
        "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf",
        "Grey", "Kite", "OneStandsOut", "Path", "summer_1am")},
    **{n.split("_by_")[0]: _LOMIRI.format(n) for n in (
        "Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace",
        "Picture_1A_by_freespace", "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi",
        "friends_by_Aitzol_Berasategi", "life_by_Aitzol_Berasategi",
        "picosdeeuropa_by_Aitzol_Berasategi", "seeding_by_Clements_Engelhardt",
        "sunset_by_Aitzol_Berasategi", "Kleiber_by_Lukas_Baubkus")},
}

# Whole photographs held out: `test` is reported, `validation` is where settings are chosen.
# Both mix close-ups, landscapes, objects, animals and buildings, as the training photos do.
TEST_PHOTOS = ("LadyBird", "Storm", "EveningGlow", "Path", "ColorfulCups", "Grey",
               "picosdeeuropa", "friends")
VALIDATION_PHOTOS = ("GreenMeadow", "summer_1am", "life", "Wine")
SKLEARN_SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "immunohistochemistry",
                          "hubble_deep_field", "retina", "motorcycle", "china")


@dataclasses.dataclass(frozen=True)
class Photo:
  name: str
  pixels: np.ndarray  # uint8 HxWx3, short side SHORT_SIDE


def split_names(split: str) -> tuple[str, ...]:
  """The photographs of a split, by name."""
  if split == "test":
    return TEST_PHOTOS
  if split == "validation":
    return VALIDATION_PHOTOS
  held_out = set(TEST_PHOTOS) | set(VALIDATION_PHOTOS)
  return tuple(sorted(n for n in _FILES if n not in held_out)) + SKLEARN_SKIMAGE_PHOTOS


def missing_files() -> list[str]:
  return [path for path in _FILES.values() if not os.path.isfile(path)]


def load_photos(names: tuple[str, ...]) -> list[Photo]:
  """The named photographs at a short side of SHORT_SIDE; a missing package is a DatasetError
  naming the apt-get command that installs it."""
  from flowfill_jax.datasets.builders import DatasetError, demo_photos
  missing = missing_files()
  if missing:
    raise DatasetError(f"the photos corpus needs {len(missing)} file(s) that are not installed "
                       f"(first: {missing[0]}): run `{INSTALL_HINT}`")
  from PIL import Image
  bundled = demo_photos()
  photos = []
  for name in names:
    if name in bundled:
      pixels = bundled[name]
    else:
      with Image.open(_FILES[name]) as img:
        pixels = np.asarray(img.convert("RGB"))
    photos.append(Photo(name, to_short_side(pixels, SHORT_SIDE)))
  return photos


def to_short_side(pixels: np.ndarray, side: int) -> np.ndarray:
  h, w = pixels.shape[:2]
  scale = side / min(h, w)
  return resize.image(pixels, (max(side, round(h * scale)), max(side, round(w * scale))))


def random_crop_box(rng: np.random.Generator, shape: tuple[int, ...],
                    sides: tuple[int, int] = CROP_SIDES) -> tuple[int, int, int, int]:
  """A random square (y0, x0, y1, x1) of a side drawn from `sides` (capped at the photo)."""
  h, w = shape[:2]
  side = min(int(rng.integers(sides[0], sides[1] + 1)), h, w)
  y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
  return y, x, y + side, x + side


def eval_crops(photos: list[Photo], split: str) -> list[tuple[Photo, tuple[int, int, int, int]]]:
  """The fixed crops of an evaluation split: EVAL_CROPS_PER_PHOTO per photo, photos in turn."""
  rng = np.random.default_rng({"validation": 11, "test": 12}[split])
  return [(photo, random_crop_box(rng, photo.pixels.shape))
          for _ in range(EVAL_CROPS_PER_PHOTO) for photo in photos]
