"""Read the tensors of a PyTorch zip archive (`torch.save` or TorchScript) without torch.

Metric weights ship as PyTorch files; this reader lets the package load them while never
importing torch. It never imports what the pickle names either: every class in the archive
becomes an inert placeholder, and only tensors are rebuilt (from the `data/` records).
"""

import collections
import pickle
import zipfile

import numpy as np

_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _Placeholder:
  """Stands for any class the pickle names (a TorchScript module); keeps its attributes."""

  def __init__(self, *args, **kwargs):
    del args, kwargs


class _Unpickler(pickle.Unpickler):
  """Rebuilds tensors as numpy arrays from the archive's storage records."""

  def __init__(self, archive: zipfile.ZipFile, prefix: str, file):
    super().__init__(file)
    self._archive = archive
    self._prefix = prefix
    self._storages = {}

  def find_class(self, module, name):
    if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
      return _rebuild_tensor
    if (module, name) == ("torch._utils", "_rebuild_parameter"):
      return lambda data, *unused: data
    if (module, name) == ("collections", "OrderedDict"):
      return collections.OrderedDict
    if (module, name) == ("torch.jit._pickle", "build_intlist"):
      return list
    if module == "torch" and name.endswith("Storage"):
      return name
    return type(name, (_Placeholder,), {})

  def persistent_load(self, pid):
    kind, storage_type, key, unused_location, unused_numel = pid
    if kind != "storage" or storage_type not in _DTYPES:
      raise ValueError(f"unsupported tensor storage {storage_type!r} in the archive")
    if key not in self._storages:
      raw = self._archive.read(f"{self._prefix}/data/{key}")
      self._storages[key] = np.frombuffer(raw, dtype=np.dtype(_DTYPES[storage_type]).newbyteorder("<"))
    return self._storages[key]


def _rebuild_tensor(storage, offset, size, stride, *unused):
  item = storage.itemsize
  view = np.lib.stride_tricks.as_strided(
      storage[offset:], shape=tuple(size), strides=tuple(s * item for s in stride))
  return np.array(view, dtype=storage.dtype.newbyteorder("="))


def _flatten(obj, prefix: str, out: dict):
  """Dotted names of every array under `obj` (state-dict keys or module attributes)."""
  if isinstance(obj, np.ndarray):
    out[prefix] = obj
    return
  if isinstance(obj, dict):
    items = obj.items()
  elif isinstance(obj, _Placeholder):
    items = vars(obj).items()
  else:
    return
  for key, value in items:
    _flatten(value, f"{prefix}.{key}" if prefix else str(key), out)


def read_tensors(path: str) -> dict[str, np.ndarray]:
  """Every tensor in the archive at `path`, keyed by its dotted name."""
  if not zipfile.is_zipfile(path):
    raise ValueError(
        f"{path} is not a PyTorch zip archive (legacy pre-1.6 torch files are not supported; "
        "re-save it with a current torch.save)")
  with zipfile.ZipFile(path) as archive:
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
    if not pickles:
      raise ValueError(f"{path} holds no data.pkl: not a PyTorch archive")
    prefix = pickles[0][:-len("/data.pkl")]
    with archive.open(pickles[0]) as file:
      root = _Unpickler(archive, prefix, file).load()
  out = {}
  _flatten(root, "", out)
  return out
