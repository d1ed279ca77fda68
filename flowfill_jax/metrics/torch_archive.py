"""Read the tensors of a PyTorch file (`torch.save`, zip or legacy, or TorchScript) without torch.

Metric weights ship as PyTorch files; this reader lets the package load them while never
importing torch. It never imports what the pickle names either: every class in the file
becomes an inert placeholder, and only tensors are rebuilt from their storage records.
"""

import collections
import dataclasses
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
_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c  # torch's pre-1.6 (non-zip) serialization


class _Placeholder:
  """Stands for any class the pickle names (a TorchScript module); keeps its attributes."""

  def __init__(self, *args, **kwargs):
    del args, kwargs


@dataclasses.dataclass(frozen=True)
class _TensorRef:
  """A tensor whose storage bytes may come later in the file (legacy format)."""
  key: str
  dtype: type
  offset: int
  size: tuple
  stride: tuple

  def materialize(self, storages: dict[str, bytes]) -> np.ndarray:
    flat = np.frombuffer(storages[self.key], np.dtype(self.dtype).newbyteorder("<"))
    item = flat.itemsize
    view = np.lib.stride_tricks.as_strided(
        flat[self.offset:], shape=self.size, strides=tuple(s * item for s in self.stride))
    return np.array(view, dtype=flat.dtype.newbyteorder("="))


class _Unpickler(pickle.Unpickler):
  """Turns tensors into `_TensorRef`s and every other class into a placeholder."""

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
    kind, storage_type, key = pid[:3]
    view_metadata = pid[5] if len(pid) > 5 else None
    if kind != "storage" or storage_type not in _DTYPES or view_metadata is not None:
      raise ValueError(f"unsupported tensor storage {pid!r}")
    return str(key), _DTYPES[storage_type]


def _rebuild_tensor(storage, offset, size, stride, *unused):
  key, dtype = storage
  return _TensorRef(key, dtype, offset, tuple(size), tuple(stride))


def _flatten(obj, prefix: str, out: dict):
  """Dotted names of every tensor under `obj` (state-dict keys or module attributes)."""
  if isinstance(obj, _TensorRef):
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


def _read_zip(path: str) -> tuple[object, dict[str, bytes]]:
  with zipfile.ZipFile(path) as archive:
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
    if not pickles:
      raise ValueError(f"{path} holds no data.pkl: not a PyTorch archive")
    prefix = pickles[0][:-len("data.pkl")]
    with archive.open(pickles[0]) as file:
      root = _Unpickler(file).load()
    records = [n for n in archive.namelist() if n.startswith(prefix + "data/")]
    storages = {n[len(prefix + "data/"):]: archive.read(n) for n in records}
  return root, storages


class _PlainUnpickler(pickle.Unpickler):
  """For the legacy header pickles: plain values only."""

  def find_class(self, module, name):
    raise pickle.UnpicklingError(f"unexpected {module}.{name} in a torch file header")


def _read_legacy(path: str) -> tuple[object, dict[str, bytes]]:
  """torch < 1.6 layout: magic, protocol, sys info, the object, storage keys, raw storages."""
  with open(path, "rb") as f:
    if _PlainUnpickler(f).load() != _LEGACY_MAGIC:
      raise ValueError(f"{path} is neither a zip nor a legacy PyTorch file")
    _PlainUnpickler(f).load()  # protocol version
    _PlainUnpickler(f).load()  # sys info
    root = _Unpickler(f).load()
    refs = {}
    _flatten(root, "", refs)
    itemsize = {ref.key: np.dtype(ref.dtype).itemsize for ref in refs.values()}
    storages = {}
    for key in map(str, _PlainUnpickler(f).load()):
      numel = int(np.frombuffer(f.read(8), "<i8")[0])  # each storage: int64 count, then bytes
      storages[key] = f.read(numel * itemsize[key])
  return root, storages


def read_tensors(path: str) -> dict[str, np.ndarray]:
  """Every tensor in the file at `path`, keyed by its dotted name."""
  root, storages = _read_zip(path) if zipfile.is_zipfile(path) else _read_legacy(path)
  refs = {}
  _flatten(root, "", refs)
  return {name: ref.materialize(storages) for name, ref in refs.items()}
