"""tfds datasets of flowfill_jax, readable with no TensorFlow (array_record + `as_data_source`).

    from flowfill_jax import datasets
    source = datasets.load("demo", "train")          # random access, len(), items {'image': uint8 HWC}

Images are stored PNG-encoded (as uint8 byte vectors, since tfds's own Image codec
needs TensorFlow) and decoded on read. Nothing is downloaded: CelebA-HQ, Places2
and Paris StreetView are read from a local `manual_dir` (layouts in docs/data.md),
the demo set is cut from photographs that ship with scikit-image and
scikit-learn.
"""

from flowfill_jax.datasets.builders import BUILDERS, DatasetError, default_data_dir, load

__all__ = ["BUILDERS", "DatasetError", "default_data_dir", "load"]
