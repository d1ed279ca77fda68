"""Reading user images and masks: bit depths Pillow would clip, EXIF orientation, label masks,
and bad files named in the error."""

import numpy as np
import pytest
from PIL import Image

from flowfill_jax.errors import UserError
from flowfill_jax.image_io import read_image, read_mask


def test_16_bit_grayscale_keeps_its_values(tmp_path):
  """Pillow's own RGB conversion clips 16-bit values to 255 (a white image); ours scales them."""
  ramp = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
  Image.fromarray(ramp).save(tmp_path / "ramp16.png")
  image = read_image(str(tmp_path / "ramp16.png"))
  assert image.shape == (32, 32, 3) and image.dtype == np.float32
  np.testing.assert_allclose(image[..., 0], ramp / 65535.0, atol=1e-6)
  np.testing.assert_array_equal(image[..., 0], image[..., 2])


def test_float_image_in_unit_range_is_read_as_is(tmp_path):
  ramp = np.linspace(0, 1, 16 * 16).reshape(16, 16).astype(np.float32)
  Image.fromarray(ramp).save(tmp_path / "ramp.tif")
  np.testing.assert_allclose(read_image(str(tmp_path / "ramp.tif"))[..., 1], ramp, atol=1e-7)


def test_float_image_with_nan_names_the_file(tmp_path):
  bad = np.full((8, 8), np.nan, np.float32)
  Image.fromarray(bad).save(tmp_path / "nan.tif")
  with pytest.raises(UserError, match=r"nan\.tif.*NaN"):
    read_image(str(tmp_path / "nan.tif"))


def test_exif_orientation_is_applied(tmp_path):
  """A phone photo stored sideways with orientation 6 (rotate 90° clockwise to display)."""
  stored = np.zeros((20, 40, 3), np.uint8)
  stored[:10, :10] = (255, 0, 0)  # red block at the stored top-left
  img = Image.fromarray(stored)
  exif = img.getexif()
  exif[0x0112] = 6
  img.save(tmp_path / "sideways.png", exif=exif)
  upright = read_image(str(tmp_path / "sideways.png"))
  assert upright.shape == (40, 20, 3)
  assert upright[:10, -10:, 0].min() == 1.0  # the block is now top-right
  assert upright[-10:, :10].max() == 0.0


def test_16_bit_mask_is_thresholded_at_half_its_range(tmp_path):
  mask = np.zeros((8, 8), np.uint16)
  mask[:, 4:] = 40000  # above 32767: hole
  mask[:, 2:4] = 20000  # below: known
  Image.fromarray(mask).save(tmp_path / "mask16.png")
  hole = read_mask(str(tmp_path / "mask16.png"))
  np.testing.assert_array_equal(hole, (np.arange(8) >= 4)[None, :].repeat(8, 0).astype(np.float32))


def test_zero_one_label_mask_reads_one_as_hole(tmp_path):
  """A mask saved from numpy as 0/1 uint8 looks black in a viewer; 1 still means hole."""
  mask = np.zeros((8, 8), np.uint8)
  mask[2:5, 3:6] = 1
  Image.fromarray(mask).save(tmp_path / "labels.png")
  np.testing.assert_array_equal(read_mask(str(tmp_path / "labels.png")), mask.astype(np.float32))
  np.testing.assert_array_equal(read_mask(str(tmp_path / "labels.png"), invert=True),
                                1.0 - mask.astype(np.float32))


def test_8_bit_mask_is_thresholded_at_128(tmp_path):
  mask = np.array([[0, 127, 128, 255]], np.uint8)
  Image.fromarray(mask).save(tmp_path / "gray.png")
  np.testing.assert_array_equal(read_mask(str(tmp_path / "gray.png")), [[0, 0, 1, 1]])


@pytest.mark.parametrize("reader", [read_image, read_mask])
def test_unreadable_file_names_the_file(tmp_path, reader):
  (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
  with pytest.raises(UserError, match=r"broken\.png.*not a readable image"):
    reader(str(tmp_path / "broken.png"))
  with pytest.raises(UserError, match=r"missing\.png does not exist"):
    reader(str(tmp_path / "missing.png"))
  (tmp_path / "photos").mkdir()
  with pytest.raises(UserError, match=r"photos is a folder, not an image file"):
    reader(str(tmp_path / "photos"))


def test_image_past_pillows_size_guard_names_the_file(tmp_path, monkeypatch):
  Image.new("RGB", (100, 100)).save(tmp_path / "huge.png")
  monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 10,000 pixels is then a "bomb"
  with pytest.raises(UserError, match=r"huge\.png: too large"):
    read_image(str(tmp_path / "huge.png"))
